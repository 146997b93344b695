"""The garbage collector's set-up of a started process (in fresh interpreters: it is once per
process, and freezing this test process's heap would outlive the test)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from harmrank.common.heap import TUNING_ENV, YOUNG_COLLECTION_THRESHOLD


def _run(code: str, tuning: str = "on") -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ | {TUNING_ENV: tuning},  # the suite's own process turns it off
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_service_freezes_its_start_up_objects_once_started() -> None:
    out = _run(
        """
        import asyncio, gc
        from harmrank.common.app import create_service_app
        from harmrank.common.settings import ServiceSettings

        app = create_service_app(service="probe", settings=ServiceSettings(), routers=[])
        before = (gc.get_freeze_count(), gc.get_threshold()[0])

        async def start() -> None:
            async with app.router.lifespan_context(app):
                print(before, gc.get_freeze_count() > 0, gc.get_threshold()[0])

        asyncio.run(start())
        """
    )
    assert out == f"(0, 700) True {YOUNG_COLLECTION_THRESHOLD}"


def test_the_tuning_is_once_per_process() -> None:
    out = _run(
        """
        import gc
        from harmrank.common.heap import tune_garbage_collector

        tune_garbage_collector()
        frozen = gc.get_freeze_count()
        made_since = [[] for _ in range(1000)]
        tune_garbage_collector()  # a second service of the local stack, say
        print(frozen > 0, gc.get_freeze_count() == frozen)
        """
    )
    assert out == "True True"


def test_cyclic_garbage_made_after_the_freeze_is_still_collected() -> None:
    out = _run(
        """
        import gc, weakref
        from harmrank.common.heap import tune_garbage_collector

        class Node:
            pass

        tune_garbage_collector()
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        print(gone() is None)
        """
    )
    assert out == "True"


def test_the_tuning_can_be_turned_off() -> None:
    out = _run(
        """
        import gc
        from harmrank.common.heap import tune_garbage_collector

        tune_garbage_collector()
        print(gc.get_freeze_count(), gc.get_threshold()[0])
        """,
        tuning="off",
    )
    assert out == "0 700"
