"""The stubs come from proto/ and cannot drift: generated on first import when missing or
stale, refused with a clear message when they cannot be generated."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from agate import _codegen
from tests import support

PACKAGE = Path(_codegen.__file__).resolve().parent
PROTO_DIR = support.SOURCE_DIR / "proto"
IMPORT = ("import agate, agate.v1.agate_pb2 as pb; "
          "print(pb.EvaluateRequest.DESCRIPTOR.full_name, agate.Client.__name__)")


class CodegenTest(unittest.TestCase):

    def setUp(self):
        # A copy of the package without its generated files, outside the checkout.
        self.root = Path(tempfile.mkdtemp(prefix="agate-codegen-"))
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        shutil.copytree(PACKAGE, self.root / "agate", ignore=shutil.ignore_patterns(
            "agate_pb2*.py", "*.sha256", "__pycache__", ".codegen-*"))
        self.generated = [self.root / name for name in _codegen.GENERATED]

    def run_python(self, code: str, proto_dir: Path | None) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=str(self.root))
        env.pop("AGATE_PROTO_DIR", None)
        if proto_dir is not None:
            env["AGATE_PROTO_DIR"] = str(proto_dir)
        return subprocess.run([sys.executable, "-c", code], env=env, cwd=self.root,
                              capture_output=True, text=True, timeout=support.WAIT)

    def test_first_import_generates_missing_stubs(self):
        self.assertFalse(any(p.exists() for p in self.generated))
        result = self.run_python(IMPORT, PROTO_DIR)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(), ["agate.v1.EvaluateRequest", "Client"])
        self.assertTrue(all(p.is_file() for p in self.generated))
        self.assertEqual((self.root / _codegen.STAMP).read_text().strip(),
                         _codegen.proto_digest(PROTO_DIR))
        self.assertEqual(list((self.root / "agate/v1").glob(".codegen-*")), [])

    def test_stubs_of_another_proto_are_regenerated(self):
        _codegen.generate(PROTO_DIR, self.root)
        (self.root / _codegen.STAMP).write_text("0" * 64 + "\n")
        (self.root / _codegen.GENERATED[0]).write_text("raise ImportError('stale stub')\n")
        result = self.run_python(IMPORT, PROTO_DIR)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(_codegen.stubs_current(PROTO_DIR, self.root))

    def test_installed_package_without_proto_uses_its_stubs(self):
        _codegen.generate(PROTO_DIR, self.root)
        result = self.run_python(IMPORT, None)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_missing_stubs_without_proto_say_what_to_do(self):
        result = self.run_python(
            "try:\n    import agate\nexcept ImportError as e:\n    print(e)", None)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("stubs (agate/v1/agate_pb2.py) are missing", result.stdout)
        self.assertIn("AGATE_PROTO_DIR", result.stdout)
        self.assertIn("cmake", result.stdout)

    def test_wrong_proto_dir_is_named(self):
        result = self.run_python("import agate", self.root)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"AGATE_PROTO_DIR={self.root} has no agate/v1/agate.proto", result.stderr)

    def test_script_mode_used_by_cmake(self):
        result = subprocess.run([sys.executable, str(self.root / "agate/_codegen.py"),
                                 str(PROTO_DIR), str(self.root)],
                                capture_output=True, text=True, timeout=support.WAIT)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(_codegen.stubs_current(PROTO_DIR, self.root))
        usage = subprocess.run([sys.executable, str(self.root / "agate/_codegen.py")],
                               capture_output=True, text=True, timeout=support.WAIT)
        self.assertEqual(usage.returncode, 2)
        self.assertIn("usage", usage.stderr)

    def test_the_checkout_stubs_match_its_proto(self):
        self.assertTrue(_codegen.stubs_current(PROTO_DIR))


if __name__ == "__main__":
    unittest.main()
