"""``harmrank demo`` wall time, as a new user meets it.

Run: ``uv run python bench/demo.py [--runs 3]``. Each run is a cold ``harmrank demo`` in a new
process (interpreter, imports, every service's start, the run, the report) into a fresh
folder; prints each wall time and their median. Target: under 60 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 60.0


def one_demo() -> float:
    with tempfile.TemporaryDirectory(prefix="harmrank-demo-bench-") as folder:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "harmrank.cli.main", "demo", "--out", str(Path(folder) / "out")],
            check=True,
            capture_output=True,
            cwd=folder,
        )
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Cold demos to time.")
    runs = parser.parse_args().runs
    seconds = []
    for index in range(runs):
        seconds.append(one_demo())
        print(f"demo {index + 1}/{runs}: {seconds[-1]:.1f} s", flush=True)
    median = statistics.median(seconds)
    verdict = "within" if median < TARGET_SECONDS else "OVER"
    target = f"{verdict} the {TARGET_SECONDS:g} s target"
    print(f"median of {runs} cold `harmrank demo`: {median:.1f} s ({target})")


if __name__ == "__main__":
    main()
