"""Imported by the gateway's fork server (``cpu_pool``) and nowhere else: what the workers
forked from it share before any work.

A worker forked from a fork server first runs the parent's main module again (as
``__mp_main__``), so that functions defined there can be unpickled. The gateway's workers only
run functions of harmrank's modules, and its main module is a console script that imports the
whole CLI (scipy, the metrics: seconds of CPU per worker on a busy machine), so the fork server
drops that step for every worker it forks. Each worker imports what its work needs when the
first call arrives (unpickling the function imports its module), once for the worker's life.
"""

from __future__ import annotations

from collections.abc import Mapping
from multiprocessing import spawn
from typing import Any

MAIN_MODULE_KEYS = frozenset({"init_main_from_name", "init_main_from_path"})
_prepare = spawn.prepare


def _prepare_without_main(data: Mapping[str, Any]) -> None:
    _prepare({key: value for key, value in data.items() if key not in MAIN_MODULE_KEYS})


# In the fork server's process only: each child it forks looks the function up here.
spawn.prepare = _prepare_without_main
