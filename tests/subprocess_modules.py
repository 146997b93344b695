"""Run a module of this repository's ``tests`` package in a process of its own.

``python -m tests.x`` is not enough: ``tests/`` has no ``__init__.py`` (a namespace package),
and a dependency that installs a regular top-level ``tests`` package into site-packages
(ppi-python does) wins the import. The child gets this folder as ``tests`` before it imports.
The module runs as ``__main__`` without replacing the ``-c`` one (``alter_sys=False``): the
gateway's worker processes, started by a fork server, import the parent's ``__main__`` module
by name when it has one, and the fork server has no such ``tests`` package to find it in.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

TESTS = Path(__file__).resolve().parent
_BOOT = (
    "import runpy, sys, types; "
    "package = types.ModuleType('tests'); package.__path__ = [sys.argv.pop(1)]; "
    "sys.modules['tests'] = package; "
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=False)"
)


def run_module(
    module: str, *args: str, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BOOT, str(TESTS), module, *args],
        cwd=TESTS.parent,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
