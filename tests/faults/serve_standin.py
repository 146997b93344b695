"""Serve one stand-in in a process of its own (for benchmarks that need separate processes).

``python -m tests.faults.serve_standin tgi --port 9001 --model-id org/m``, or
``python -m tests.faults.serve_standin openai --port 9002 --key sk-…`` (any provider name).
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.types import ASGIApp
from tests.generator.tgi_standin import Standin, StandinState
from tests.judge.standins import ROUTES, ProviderName, StandIn, prefer_position

from harmrank.common.heap import tune_garbage_collector


def app_for(kind: str, model_id: str, key: str, latency: float) -> ASGIApp:
    if kind == "tgi":
        return Standin(StandinState(model_id=model_id, latency=latency)).app
    provider: ProviderName = kind  # type: ignore[assignment]  # checked by argparse choices
    standin = StandIn(provider, key, policy=prefer_position(0), latency=latency)
    # A long run must not keep every request it saw: keep none.
    standin.seen = _Forgetful()
    return standin.app()


class _Forgetful(list):  # type: ignore[type-arg]
    def append(self, _: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["tgi", *ROUTES])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-id", default="org/model")
    parser.add_argument("--key", default="")
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    app = app_for(args.kind, args.model_id, args.key, args.latency)
    # A model server has no collector pauses (TGI is Rust): the stand-in's start-up objects
    # (its schemas, validators, the app) are kept out of Python's full collections, which
    # otherwise stalled every call in flight for 100-150 ms now and then under load.
    tune_garbage_collector()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
