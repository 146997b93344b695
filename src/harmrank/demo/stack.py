"""The demonstration backends as members of the local stack, and the settings that use them.

Each demo model gets a TGI-speaking server of its own (TGI serves one model per process) and
both demo judges share one OpenAI-compatible server; the generator and the judge service are
configured with them exactly as with real servers (backend ``tgi``, provider
``openai_compatible``), so everything between the gateway and these servers is production code.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

from harmrank.cli.local_stack import Member, ServiceOverrides
from harmrank.demo.content import DEMO_MODELS, DemoModel
from harmrank.demo.judge_server import DEMO_JUDGES, DemoJudgeServer
from harmrank.demo.tgi_server import DemoTgiServer
from harmrank.gateway.db.engine import sqlite_url

LOOPBACK = "127.0.0.1"
SERVICES = ("generator", "judge", "metrics", "gateway")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def backend_members(models: Sequence[DemoModel] = DEMO_MODELS) -> list[Member]:
    """One demo TGI server per model, then the demo judge server, each on a free port."""
    members = [
        Member(
            f"demo-tgi {m.name}",
            DemoTgiServer(m.name, m.harm).app,
            LOOPBACK,
            free_port(),
            what=f"demonstration TGI server (harm level {m.harm:g})",
        )
        for m in models
    ]
    judges = ", ".join(j.name for j in DEMO_JUDGES)
    members.append(
        Member(
            "demo-judge",
            DemoJudgeServer().app,
            LOOPBACK,
            free_port(),
            what=f"demonstration OpenAI-compatible judge server ({judges})",
        )
    )
    return members


def demo_overrides(
    backends: Sequence[Member],
    models: Sequence[DemoModel],
    database: Path | None,
    free_ports: bool,
) -> ServiceOverrides:
    """Settings of the four services for the demo: its backends, no tokens, a fast worker."""
    tgi = backends[: len(models)]
    judge_url = backends[-1].url
    generator: dict[str, object] = {
        "models": [
            {"name": m.name, "base_url": b.url, "prompt_template": "{prompt}\n"}
            for m, b in zip(models, tgi, strict=True)
        ]
    }
    judge: dict[str, object] = {
        "judges": [
            {
                "name": j.name,
                "provider": "openai_compatible",
                "model": j.model,
                "base_url": judge_url,
            }
            for j in DEMO_JUDGES
        ],
        "judges_file": None,
    }
    gateway: dict[str, object] = {
        "api_tokens": [],
        "read_tokens": [],
        "require_token_for_reads": False,
        "poll_interval_seconds": 0.1,
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 2.0,
    }
    if database is not None:
        # Named outright: the demo's database is its own, whatever HARMRANK_DATABASE_URL says.
        gateway["database_url"] = sqlite_url(database.resolve())
    overrides = ServiceOverrides(generator=generator, judge=judge, gateway=gateway)
    if free_ports:
        for name in SERVICES:
            getattr(overrides, name)["port"] = free_port()
    return overrides
