"""Generates agate's gRPC stubs (agate/v1/agate_pb2.py, agate_pb2_grpc.py) from proto/.

The stubs are never committed: CMake runs this file as a script at build time (the target
agate_python_stubs), and ``import agate`` runs ensure_stubs() so a source checkout works with
nothing more than ``PYTHONPATH=sdk/python`` and Debian's python3-grpc-tools.

Usage as a script (what sdk/python/CMakeLists.txt runs):

    /usr/bin/python3 sdk/python/agate/_codegen.py PROTO_DIR

The generated files carry the SHA-256 of the .proto they came from (agate/v1/agate.proto.sha256),
so a changed proto/ is noticed on the next import or build and the stubs are regenerated: they
cannot drift from the wire contract of the checkout they live in.

Generation is safe to run concurrently (two builds, or a build and an import): each run writes to
a private temporary directory and renames finished files into place.

This module imports nothing from the agate package (it runs before the stubs exist).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

# The contract, relative to the proto root (as the C++ build names it).
PROTO_FILE = "agate/v1/agate.proto"
# The package directory (sdk/python/agate) and where the stubs go inside it: protoc writes
# agate/v1/agate_pb2.py relative to the output root sdk/python, and the generated
# `from agate.v1 import agate_pb2` then resolves to this very package.
PACKAGE_DIR = Path(__file__).resolve().parent
OUTPUT_ROOT = PACKAGE_DIR.parent
GENERATED = ("agate/v1/agate_pb2.py", "agate/v1/agate_pb2_grpc.py")
STAMP = "agate/v1/agate.proto.sha256"


class StubsError(ImportError):
    """The stubs are missing or stale and cannot be generated (says what to install or set)."""


def find_proto_dir() -> Path | None:
    """find_proto_dir returns the proto root: $AGATE_PROTO_DIR, else the checkout's proto/.

    Raises StubsError when AGATE_PROTO_DIR is set but holds no agate/v1/agate.proto.

    In a source checkout the package lives in sdk/python/agate, two levels below proto/'s
    parent. An installed package has no proto/ beside it (its stubs were generated when it
    was built): None.
    """
    env = os.environ.get("AGATE_PROTO_DIR")
    if env:
        if not (Path(env) / PROTO_FILE).is_file():
            raise StubsError(f"agate: AGATE_PROTO_DIR={env} has no {PROTO_FILE}: point it at the "
                             "repository's proto/ directory")
        return Path(env)
    candidate = OUTPUT_ROOT.parent.parent / "proto"
    return candidate if (candidate / PROTO_FILE).is_file() else None


def proto_digest(proto_dir: Path) -> str:
    """proto_digest is the hex SHA-256 of proto_dir's agate/v1/agate.proto."""
    return hashlib.sha256((proto_dir / PROTO_FILE).read_bytes()).hexdigest()


def stubs_current(proto_dir: Path | None, output_root: Path = OUTPUT_ROOT) -> bool:
    """stubs_current tells whether the stubs exist and, when proto_dir is known, match it."""
    if not all((output_root / name).is_file() for name in GENERATED):
        return False
    if proto_dir is None:
        return True
    stamp = output_root / STAMP
    return stamp.is_file() and stamp.read_text().strip() == proto_digest(proto_dir)


def generate(proto_dir: Path, output_root: Path = OUTPUT_ROOT) -> None:
    """generate runs grpc_tools.protoc on proto_dir/agate/v1/agate.proto into output_root.

    Raises StubsError when grpc_tools is not installed or protoc fails.
    """
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError as e:
        raise StubsError(
            "agate: generating the gRPC stubs needs grpc_tools: apt-get install python3-grpc-tools "
            "(or build with cmake, which generates them)") from e
    proto_dir = Path(proto_dir).resolve()
    if not (proto_dir / PROTO_FILE).is_file():
        raise StubsError(f"agate: {proto_dir / PROTO_FILE} not found: set AGATE_PROTO_DIR to the "
                         "repository's proto/ directory")
    digest = proto_digest(proto_dir)
    args = ["grpc_tools.protoc", f"-I{proto_dir}"]
    # The well-known types (timestamp, struct, duration) that grpc_tools ships, for a protoc
    # that does not find them on its own.
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    if well_known.is_dir():
        args.append(f"-I{well_known}")
    (output_root / "agate/v1").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".codegen-", dir=output_root / "agate/v1") as tmp:
        args += [f"--python_out={tmp}", f"--grpc_python_out={tmp}", str(proto_dir / PROTO_FILE)]
        if protoc.main(args) != 0:
            raise StubsError(f"agate: grpc_tools.protoc failed on {proto_dir / PROTO_FILE} "
                             "(its errors are above)")
        stamp_tmp = Path(tmp) / STAMP
        stamp_tmp.write_text(digest + "\n")
        # Stubs first, the stamp last: a stamp never vouches for stubs that are not in place.
        for name in GENERATED + (STAMP,):
            os.replace(Path(tmp) / name, output_root / name)


def ensure_stubs() -> None:
    """ensure_stubs generates the stubs if they are missing or older than proto/.

    Raises StubsError (an ImportError) when they are missing and cannot be generated.
    """
    proto_dir = find_proto_dir()
    if stubs_current(proto_dir):
        return
    if proto_dir is None:
        raise StubsError(
            "agate: the generated stubs (agate/v1/agate_pb2.py) are missing and proto/ was not "
            "found: build with cmake, install with pip, or set AGATE_PROTO_DIR to the repository's "
            "proto/ directory")
    try:
        generate(proto_dir)
    except PermissionError as e:
        raise StubsError(f"agate: cannot write the generated stubs into {OUTPUT_ROOT / 'agate/v1'} "
                         f"({e}): build with cmake as the owner of the checkout") from e


def main(argv: list[str]) -> int:
    """main: _codegen.py PROTO_DIR [OUTPUT_ROOT] regenerates the stubs (for CMake)."""
    if len(argv) not in (2, 3):
        print("usage: _codegen.py PROTO_DIR [OUTPUT_ROOT]", file=sys.stderr)
        return 2
    output_root = Path(argv[2]) if len(argv) == 3 else OUTPUT_ROOT
    try:
        generate(Path(argv[1]), output_root)
    except StubsError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
