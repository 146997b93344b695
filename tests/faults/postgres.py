"""A throwaway PostgreSQL cluster of our own, which a test may restart.

The shared server on 5432 is never touched: this one lives in a temporary folder, on a free
port, made by the installed PostgreSQL binaries (``initdb``, ``pg_ctl``). PostgreSQL refuses to
run as root, so as root every command runs as the ``postgres`` user (``runuser``) in a folder
that user owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
RUN_AS = "postgres"


def binary(name: str) -> str | None:
    for folder in BIN_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    return shutil.which(name)


class Cluster:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = port

    @property
    def url(self) -> str:
        return f"postgresql://{RUN_AS}@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", RUN_AS, "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, *command], check=True, capture_output=True, timeout=timeout, cwd=self.folder
        )

    def _pg_ctl(self, action: str, *options: str) -> None:
        pg_ctl = binary("pg_ctl")
        assert pg_ctl is not None
        self._run(pg_ctl, action, "-D", str(self.data), "-w", "-t", "30", *options)

    def init(self) -> None:
        initdb = binary("initdb")
        assert initdb is not None
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", RUN_AS, "--no-sync")

    def start(self) -> None:
        settings = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._pg_ctl("start", "-l", str(self.folder / "server.log"), "-o", settings)

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def restart(self) -> None:
        """Stop (closing every connection, as a crash or a failover does) and start again."""
        self.stop("immediate")
        self.start()


def available() -> bool:
    if binary("initdb") is None or binary("pg_ctl") is None:
        return False
    return os.geteuid() != 0 or shutil.which("runuser") is not None


@contextmanager
def own_cluster() -> Iterator[Cluster]:
    """A new cluster, started; stopped and deleted afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="harmrank-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, RUN_AS, RUN_AS)
    cluster = Cluster(folder, free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # never started, or down
            cluster.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
