"""What ``harmrank serve`` warns about at start: servers it cannot reach, judges it lacks.

One line per model server and per judge provider (base URL) that does not answer, one for a
provider whose judges have no key, one per judge whose model its provider has retired (or
announced a shutdown for), and one when no judge is configured at all. Any HTTP answer
counts as reachable: whether a request is valid is the request's business, this only says that
the server is there. Warnings, not errors: a model server may come up after the generator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import httpx

from harmrank.generator.settings import GeneratorSettings, ModelConfig
from harmrank.judge.retired import retirement_warnings
from harmrank.judge.settings import JudgeConfig, JudgeSettings

PROBE_TIMEOUT = httpx.Timeout(3.0)
KEYLESS_PROVIDERS = frozenset({"openai_compatible"})


async def reachable(client: httpx.AsyncClient, url: str) -> str | None:
    """None when something answers at ``url``, else why not."""
    try:
        await client.get(url)
    except httpx.TimeoutException:
        return "no answer within 3 s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def _folder_warning(model: ModelConfig) -> str | None:
    found = model.path is not None and Path(model.path).is_dir()
    return None if found else f"model {model.name!r}: no model folder at {model.path}"


async def _server_warning(client: httpx.AsyncClient, model: ModelConfig) -> str | None:
    assert model.base_url is not None  # the settings require it for HTTP backends
    why = await reachable(client, model.base_url.rstrip("/") + "/health")
    if why is None:
        return None
    return (
        f"model {model.name!r}: cannot reach its {model.backend} server at {model.base_url} ({why})"
    )


async def model_warnings(settings: GeneratorSettings) -> list[str]:
    local = [m for m in settings.registry() if m.backend == "transformers"]
    served = [m for m in settings.registry() if m.backend != "transformers"]
    found = [_folder_warning(m) for m in local]
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT) as client:
        found += await asyncio.gather(*(_server_warning(client, m) for m in served))
    return [w for w in found if w]


def _by_server(judges: Sequence[JudgeConfig]) -> dict[str, list[JudgeConfig]]:
    servers: dict[str, list[JudgeConfig]] = {}
    for judge in judges:
        servers.setdefault(judge.resolved_base_url, []).append(judge)
    return servers


async def judge_warnings(settings: JudgeSettings) -> list[str]:
    if not settings.judges:
        return [
            "no judges are configured (HARMRANK_JUDGE_JUDGES or HARMRANK_JUDGE_JUDGES_FILE): "
            "every run will be refused until there are"
        ]
    servers = _by_server(settings.judges)
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT) as client:
        found = await asyncio.gather(*(reachable(client, url) for url in servers))
    warnings = retirement_warnings(settings.judges)
    for (url, judges), why in zip(servers.items(), found, strict=True):
        names = ", ".join(j.name for j in judges)
        provider = judges[0].provider
        if why is not None:
            warnings.append(
                f"judge provider {provider} at {url} ({names}): cannot reach it ({why})"
            )
        keyless = [j.name for j in judges if settings.api_key_for(j) is None]
        if keyless and provider not in KEYLESS_PROVIDERS:
            warnings.append(f"judge provider {provider} ({', '.join(keyless)}): no API key set")
    return warnings


async def startup_warnings(
    generator: GeneratorSettings | None, judge: JudgeSettings | None
) -> list[str]:
    """Every warning about the services given (None: that service is not started here)."""
    found: list[str] = []
    if generator is not None:
        found += await model_warnings(generator)
    if judge is not None:
        found += await judge_warnings(judge)
    return found
