"""A run's report request at scale: its size, and what the metrics service needs to answer it.

Run: ``uv run python bench/report_request.py`` (sizes only: 50,000, 100,000 and 200,000
prompts), ``--serve`` to also send each to a fresh ``harmrank serve metrics`` (its own
process, default settings) and print the answer's status, its time and the service's peak
resident memory (VmHWM). The request is the score task's, for a run shaped like
``bench/scale_run.py``'s (3 models; judges gpt4o in two presentation orders and claude in
one; 200 resamples), built without running one (``tests/gateway/runs/large_score.py``).
``--id-length`` pads the prompt ids; ``--resamples`` changes the bootstrap's.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# The repository's tests/ helpers, ahead of the `tests` package ppi-python installs.
import repo_tests

sys.path.insert(0, str(repo_tests.ROOT))
from tests.gateway.runs.large_score import request_body, score_work

from processes import fresh_metrics_report


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    parser.add_argument("--id-length", type=int, default=0, help="pad prompt ids to this")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--serve", action="store_true", help="send each to a metrics service")
    return parser.parse_args()


def size_line(prompts: int, body: bytes) -> str:
    packed = gzip.compress(body, compresslevel=1)
    return (
        f"{prompts:>9,} prompts: {len(body):>12,} bytes ({len(body) / 2**20:6.2f} MiB, "
        f"{len(body) / prompts:5.1f} a prompt); gzip -1 {len(body) / len(packed):4.1f}x smaller"
    )


def main() -> None:
    args = _arguments()
    for prompts in args.prompts:
        work = score_work(prompts, id_length=args.id_length, resamples=args.resamples)
        body = request_body(work)
        del work
        print(size_line(prompts, body), flush=True)
        if args.serve:
            print("    " + fresh_metrics_report(body, "harmrank-report-request-"), flush=True)


if __name__ == "__main__":
    main()
