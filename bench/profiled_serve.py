"""``python bench/profiled_serve.py OUT.prof SERVICE PORT``: serve one harmrank service as
``harmrank serve SERVICE`` does, under cProfile, until SIGTERM; then write the profile to OUT.

uvicorn re-raises the SIGTERM it caught once it has shut down, which ends the process before
``python -m cProfile`` could write its file; here the signal only asks the server to stop.
"""

from __future__ import annotations

import contextlib
import cProfile
import signal
import sys
from collections.abc import Iterator

import uvicorn

from harmrank.cli.main import SERVICES, Service
from harmrank.common.loop import run


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the handler below stops the server and lets the profile be written


def main() -> None:
    out, service, port = sys.argv[1], Service(sys.argv[2]), int(sys.argv[3])
    config = uvicorn.Config(
        SERVICES[service][0], factory=True, host="127.0.0.1", port=port, log_level="warning"
    )
    server = _Server(config)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    profile = cProfile.Profile()
    profile.enable()
    run(server.serve())
    profile.disable()
    profile.dump_stats(out)


if __name__ == "__main__":
    main()
