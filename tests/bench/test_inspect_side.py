"""The Inspect AI side-by-side of ``bench/platform_overhead.py`` without Inspect installed:
why it is skipped, and the verdicts it prints against issue #21's targets."""

from __future__ import annotations

from pathlib import Path

import inspect_side
from inspect_side import HarmrankFigures, InspectTrial


def _python(folder: Path, script: str) -> Path:
    """A stand-in for an environment's Python: a shell script answering as it would."""
    python = folder / "python"
    python.write_text("#!/bin/sh\n" + script)
    python.chmod(0o755)
    return python


def test_a_missing_environment_is_skipped_with_how_to_make_it(tmp_path: Path) -> None:
    python, why = inspect_side.find_python(tmp_path / "absent" / "bin" / "python")
    assert python is None
    assert "absent/bin/python" in why
    assert "bash bench/inspect_env.sh" in why


def test_an_environment_without_inspect_is_skipped_with_its_error(tmp_path: Path) -> None:
    error = "ModuleNotFoundError: No module named 'inspect_ai'"
    fake = _python(tmp_path, f'echo "Traceback" >&2; echo "{error}" >&2; exit 1\n')
    python, why = inspect_side.find_python(fake)
    assert python is None
    assert error in why


def test_an_environment_with_inspect_is_used_and_its_version_told(tmp_path: Path) -> None:
    fake = _python(tmp_path, 'test "$1" = -c && echo 0.3.285\n')
    assert inspect_side.find_python(fake) == (fake, "0.3.285")


def _ours(latency: float, rate: float, cpu_ms: float) -> HarmrankFigures:
    return HarmrankFigures(latency, 16, rate, cpu_ms, 0.5, 0.4, 220, 930)


def _theirs(rate: float, cpu_ms: float, calls: int = 4000) -> InspectTrial:
    seconds = calls / rate
    return InspectTrial(
        generations=calls - 1000,
        judgments=1000,
        expected=4000,
        seconds=seconds,
        cpu=cpu_ms * calls / 1000,
        eval_seconds=seconds + 1,
        eval_cpu=(cpu_ms + 1) * calls / 1000,
        standins=0.6 * calls / 1000,
        rss=170,
        settings={},
    )


def test_the_verdicts_at_0_ms_and_16_in_flight() -> None:
    lines = inspect_side.side_by_side(_ours(0.0, 310.0, 3.0), [_theirs(100.0, 7.0)])
    assert "  calls/s, harmrank / Inspect: 3.10x (target at least 3x): met" in lines
    assert "  CPU per call, Inspect / harmrank: 2.33x (target at least 2x): met" in lines
    assert "    (counting harmrank's database backends too: 2.00x)" in lines


def test_targets_missed_say_so_and_other_configs_have_no_rate_target() -> None:
    lines = inspect_side.side_by_side(_ours(0.1, 150.0, 4.0), [_theirs(100.0, 7.0)])
    assert "  calls/s, harmrank / Inspect: 1.50x (no target here)" in lines
    assert "  CPU per call, Inspect / harmrank: 1.75x (target at least 2x): NOT met" in lines


def test_calls_inspect_did_not_make_are_reported() -> None:
    lines = inspect_side.side_by_side(_ours(0.0, 310.0, 3.0), [_theirs(100.0, 7.0, calls=3990)])
    assert "  Inspect made [3990] calls, not 4000" in lines


def test_interleaved_trials_are_compared_pair_by_pair() -> None:
    ours = HarmrankFigures(0.0, 16, 300.0, 3.0, 0.5, 0.4, 220, 930, trial_rates=(300.0, 240.0))
    lines = inspect_side.side_by_side(ours, [_theirs(100.0, 7.0), _theirs(120.0, 7.0)])
    assert "  calls/s, harmrank / Inspect, trial by trial: 3.00, 2.00" in lines
