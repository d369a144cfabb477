#!/usr/bin/python3
"""Keeps the layers of docs/design.md true: a folder includes only the folders below it.

    tests/layering_test.py [ROOT]        # checks ROOT (default: the repository); exit 1 on a
                                         # forbidden include, printed as FILE:LINE: ...
    tests/layering_test.py --self-test   # shows that a forbidden include is caught

The build enforces the same edges (each folder is reachable only through the include directory
of its CMake target); this check also covers edges a target's link line would allow by accident,
the storage proto (only cases/ and store/ may read it) and gRPC (not below server/ and client/).
"""
import os
import re
import sys
import tempfile

# folder -> the project folders its files may include (itself included).
ALLOWED = {
    "common": {"common"},
    "engine": {"engine", "common"},
    "cases": {"cases", "engine", "common"},
    "store": {"store", "cases", "engine", "common"},
    "service": {"service", "store", "cases", "engine", "common"},
    "server": {"server", "service", "store", "cases", "engine", "common"},
    "client": {"client", "service", "store", "engine", "common"},
    # Benchmarks measure any layer (as tests do), the server's identity code included.
    "bench": {"bench", "client", "server", "service", "store", "cases", "engine", "common",
              "tests"},
}
PROJECT = {"common", "engine", "cases", "store", "service", "server", "client", "bench", "tests"}
STORE_PROTO = "agate/store/v1/store.pb.h"
STORE_PROTO_USERS = {"cases", "store"}
GRPC_USERS = {"server", "client", "bench"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def check(root):
    problems = []
    for folder, allowed in ALLOWED.items():
        base = os.path.join(root, folder)
        for dirpath, _, files in os.walk(base):
            for name in sorted(files):
                if not name.endswith((".h", ".cc")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for number, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = m.group(1)
                        top = target.split("/", 1)[0]
                        if top in PROJECT and top not in allowed:
                            problems.append(f"{rel}:{number}: {folder}/ may not include {target} "
                                            f"({folder} -> {top} is not an edge of docs/design.md)")
                        if target == STORE_PROTO and folder not in STORE_PROTO_USERS:
                            problems.append(f"{rel}:{number}: {folder}/ may not include the "
                                            f"storage proto {target} (only cases/ and store/)")
                        if (target.startswith("grpcpp/") or target.endswith(".grpc.pb.h")) and \
                                folder not in GRPC_USERS:
                            problems.append(f"{rel}:{number}: {folder}/ may not include gRPC "
                                            f"({target}): only server/, client/ and bench/")
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "engine"))
        os.makedirs(os.path.join(root, "client"))
        with open(os.path.join(root, "engine", "x.cc"), "w") as f:
            f.write('#include "cases/case_store.h"\n#include "agate/store/v1/store.pb.h"\n')
        with open(os.path.join(root, "client", "y.cc"), "w") as f:
            f.write('#include "common/clock.h"\n#include "server/status.h"\n')
        problems = check(root)
        expected = ["engine/x.cc:1:", "engine/x.cc:2:", "client/y.cc:2:"]
        found = [p.split(" ", 1)[0] for p in problems]
        if sorted(found) != sorted(expected):
            print("layering self-test: expected", expected, "got", problems)
            return 1
    print("layering self-test: a forbidden include is caught")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"layering: {len(problems)} forbidden include(s)")
        return 1
    print("layering: every include follows the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
