"""Judge model ids against the list of retired ones: the shipped configurations name none, and
the judge service warns at start-up about a configured one."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from harmrank.judge.app import create_app
from harmrank.judge.retired import RETIREMENTS, retirement_warnings
from harmrank.judge.settings import JudgeConfig, JudgeSettings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*/judges.json"))
SHIPPED = [
    *EXAMPLES,
    ROOT / "deploy" / "compose" / "judges.json",
    ROOT / "deploy" / "k8s" / "base" / "judges.json",
]
RETIRED_CLAUDE = JudgeConfig(
    name="claude", provider="anthropic", model="claude-3-5-sonnet-20241022"
)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_judges_name_no_retired_or_retiring_model(path: Path) -> None:
    judges = [JudgeConfig.model_validate(j) for j in json.loads(path.read_text())]
    assert judges
    # Not even one announced for later: a deployment outlives its first week.
    assert retirement_warnings(judges, today=dt.date.min) == []
    for judge in judges:
        assert judge.price_input_per_million is not None, judge.name
        assert judge.price_output_per_million is not None, judge.name


def test_a_retired_model_is_named_with_its_date_and_a_replacement() -> None:
    (warning,) = retirement_warnings([RETIRED_CLAUDE], today=dt.date(2026, 12, 4))
    assert "'claude'" in warning
    assert "claude-3-5-sonnet-20241022 was retired on 2025-10-22" in warning
    assert "claude-sonnet-4-5" in warning


def test_an_announced_shutdown_is_a_date_ahead() -> None:
    gpt = JudgeConfig(name="gpt4o", provider="openai", model="gpt-4o-2024-08-06")
    (before,) = retirement_warnings([gpt], today=dt.date(2026, 12, 4))
    assert "shuts down 2027-01-01" in before
    (after,) = retirement_warnings([gpt], today=dt.date(2027, 2, 1))
    assert "was retired on 2027-01-01" in after


def test_an_id_is_matched_with_its_provider() -> None:
    """The same id on a self-hosted OpenAI-compatible server is not the provider's model."""
    proxy = JudgeConfig(
        name="c",
        provider="openai_compatible",
        model="claude-3-5-sonnet-20241022",
        base_url="http://127.0.0.1:1",
    )
    current = JudgeConfig(name="c", provider="anthropic", model="claude-sonnet-4-5-20250929")
    assert retirement_warnings([proxy, current]) == []


def test_the_list_holds_one_entry_per_model() -> None:
    keys = [(r.provider, r.model) for r in RETIREMENTS]
    assert len(keys) == len(set(keys))
    replacements = {r.replacement for r in RETIREMENTS}
    assert not replacements & {r.model for r in RETIREMENTS}


async def test_the_judge_warns_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(JudgeSettings(judges=[RETIRED_CLAUDE]))
    with caplog.at_level(logging.WARNING, logger="harmrank.judge"):
        async with app.router.lifespan_context(app):
            pass
    assert any("claude-3-5-sonnet-20241022 was retired" in r.getMessage() for r in caplog.records)
