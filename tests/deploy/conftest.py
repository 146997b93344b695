"""A running stack with one finished run, shared by the tests of a module."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.deploy.stack import JUDGES, TOKEN, Stack, running_stack

from harmrank.cli.smoke import smoke

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"


@dataclass
class FinishedRun:
    stack: Stack
    run_id: int


@pytest.fixture(scope="module")
def finished_run() -> Iterator[FinishedRun]:
    """The stack after ``harmrank smoke`` pushed a dataset through a whole run."""
    with running_stack() as stack:
        lines: list[str] = []
        assert smoke(stack.gateway, TOKEN, 60, judges=list(JUDGES), echo=lines.append) == 0, lines
        found = re.search(r"PASS: run (\d+)", lines[-1])
        assert found, lines
        yield FinishedRun(stack, int(found.group(1)))
