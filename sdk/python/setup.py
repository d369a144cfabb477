"""Generates the gRPC stubs from proto/ before setuptools copies the package (see
pyproject.toml). Everything else is declared in pyproject.toml."""

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _codegen():
    # By path: importing the agate package would already need the stubs.
    spec = importlib.util.spec_from_file_location("_agate_codegen", HERE / "agate/_codegen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithStubs(build_py):
    """build_py that first generates agate/v1/agate_pb2*.py from the repository's proto/."""

    def run(self):
        _codegen().ensure_stubs()
        super().run()


setup(cmdclass={"build_py": BuildPyWithStubs})
