"""``harmrank reproduce`` as a user runs it: progress, headline tables, the report's path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from harmrank.cli.main import app


def test_reproduce_prints_progress_tables_and_the_report_path(
    paper_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    args = ["reproduce", "--data", str(paper_data), "--out", str(out), "--resamples", "20"]
    result = CliRunner().invoke(app, args, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "importing the study's files" in result.output
    text = result.output
    # the answers come before the tables they rest on
    assert text.index("Findings") < text.index("Harm strength") < text.index("Agreement (95% CI")
    assert "gpt4o~human" in text
    assert "τ-b" in text
    # readable at 80 columns: nothing wider, no word broken across lines, no signed zero
    tables = text[text.index("Harm strength") : text.index("Report:")]
    assert max(len(line) for line in tables.splitlines()) <= 80
    for broken in ("harmfu\n", "Krippen", "-0.000"):
        assert broken not in tables
    assert "How many human labels?" in text
    unwrapped = "".join(result.output.splitlines())  # rich folds long paths across lines
    assert str(out / "report.html") in unwrapped
    assert (out / "summary.json").is_file()


def test_bad_data_is_a_clear_error_with_exit_code_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["reproduce", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such folder, archive or URL" in " ".join(result.output.split())


def test_p_outside_the_unit_interval_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["reproduce", "--p", "1.5", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--p" in result.output


def test_the_installed_entry_point_answers_help() -> None:
    result = subprocess.run(
        [Path(sys.executable).parent / "harmrank", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "reproduce" in result.stdout
    assert "serve" in result.stdout
