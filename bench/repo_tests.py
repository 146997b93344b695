"""Lets a bench script import this repository's test helpers (``tests.conftest``, stand-ins).

``tests/`` has no ``__init__.py`` (pytest imports it as a namespace package), and ppi-python, a
test-only dependency, installs a regular top-level ``tests`` package into site-packages, which
would win the import.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Imported for this effect, before any ``tests.…`` import: ``tests`` is this repository's folder.
_package = types.ModuleType("tests")
_package.__path__ = [str(ROOT / "tests")]
sys.modules["tests"] = _package
