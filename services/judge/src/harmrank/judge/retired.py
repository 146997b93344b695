"""Judge model ids their providers have retired, or announced a shutdown date for.

A retired id fails every call (404 from the provider), so a deployment that names one learns it
only when a run's judge tasks fail; the judge service and ``harmrank serve`` warn at start-up
instead. Dates are the providers' published deprecation pages; a month-only announcement counts
from the first day of that month, so the warning comes early rather than late. Add ids here as
providers announce them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from harmrank.judge.settings import JudgeConfig

logger = logging.getLogger("harmrank.judge")


@dataclass(frozen=True)
class Retirement:
    provider: str
    model: str
    shutdown: dt.date
    replacement: str


def _r(provider: str, model: str, shutdown: str, replacement: str) -> Retirement:
    return Retirement(provider, model, dt.date.fromisoformat(shutdown), replacement)


RETIREMENTS: tuple[Retirement, ...] = (
    # https://docs.anthropic.com/en/docs/about-claude/model-deprecations
    _r("anthropic", "claude-instant-1.2", "2024-11-06", "claude-haiku-4-5-20251001"),
    _r("anthropic", "claude-2.0", "2025-07-21", "claude-sonnet-4-5-20250929"),
    _r("anthropic", "claude-2.1", "2025-07-21", "claude-sonnet-4-5-20250929"),
    _r("anthropic", "claude-3-sonnet-20240229", "2025-07-21", "claude-sonnet-4-5-20250929"),
    _r("anthropic", "claude-3-5-sonnet-20240620", "2025-10-22", "claude-sonnet-4-5-20250929"),
    _r("anthropic", "claude-3-5-sonnet-20241022", "2025-10-22", "claude-sonnet-4-5-20250929"),
    _r("anthropic", "claude-3-opus-20240229", "2026-01-05", "claude-opus-4-1-20250805"),
    # https://platform.openai.com/docs/deprecations
    _r("openai", "gpt-3.5-turbo-0613", "2024-09-13", "gpt-4.1-2025-04-14"),
    _r("openai", "gpt-4-vision-preview", "2024-12-06", "gpt-4.1-2025-04-14"),
    _r("openai", "gpt-4-32k", "2025-06-06", "gpt-4.1-2025-04-14"),
    _r("openai", "gpt-4.5-preview", "2025-07-14", "gpt-4.1-2025-04-14"),
    _r("openai", "gpt-4o-2024-08-06", "2027-01-01", "gpt-4.1-2025-04-14"),  # "January 2027"
    # https://ai.google.dev/gemini-api/docs/changelog
    _r("gemini", "gemini-1.5-pro-001", "2025-05-24", "gemini-2.5-pro"),
    _r("gemini", "gemini-1.5-flash-001", "2025-05-24", "gemini-2.5-flash"),
    _r("gemini", "gemini-1.5-pro-002", "2025-09-24", "gemini-2.5-pro"),
    _r("gemini", "gemini-1.5-flash-002", "2025-09-24", "gemini-2.5-flash"),
)
_BY_MODEL = {(r.provider, r.model): r for r in RETIREMENTS}


def retirement_warnings(judges: Iterable[JudgeConfig], today: dt.date | None = None) -> list[str]:
    """One sentence per configured judge whose model is retired or has a shutdown date."""
    today = today or dt.date.today()
    found = []
    for judge in judges:
        retirement = _BY_MODEL.get((judge.provider, judge.model))
        if retirement is None:
            continue
        when = retirement.shutdown.isoformat()
        state = f"was retired on {when}" if retirement.shutdown <= today else f"shuts down {when}"
        found.append(
            f"judge {judge.name!r}: {judge.provider} model {judge.model} {state}; "
            f"a current model is {retirement.replacement}"
        )
    return found


def warn_about_retired_models(judges: Iterable[JudgeConfig]) -> list[str]:
    """Log each retirement warning (start-up); answers them for a caller that shows them too."""
    warnings = retirement_warnings(judges)
    for warning in warnings:
        logger.warning(warning)
    return warnings
