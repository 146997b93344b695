"""The study's real public data imports with the figures its README gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmrank.gateway.study import StudyImport, import_study

JUDGES = ("gpt4o_predictions.csv", "sonnet_predictions.csv", "llama_predictions.csv")


@pytest.fixture(scope="module")
def study(paper_data: Path) -> StudyImport:
    return import_study(paper_data)


def group_files(report: dict[str, dict[str, int]]) -> list[str]:
    return [f for f in report["rows_read"] if "group_" in f.casefold()]


def test_every_row_is_kept_or_excluded(study: StudyImport) -> None:
    report = study.report()
    for name, read in report["rows_read"].items():
        assert read == report["kept"][name] + report["excluded"][name], name


def test_group_files(study: StudyImport) -> None:
    report = study.report()
    groups = group_files(report)
    assert len(groups) == 17
    assert {report["rows_read"][f] for f in groups} == {60}
    assert report["exclusions"]["empty_response"] == 35
    assert report["exclusions"]["wrong_length"] == 1  # group 3's lone "N/A"
    assert sum(report["kept"][f] for f in groups) == 1020 - 35 - 1


def test_prompts(study: StudyImport) -> None:
    assert study.report()["prompts"] == {
        "distinct": 1013,
        "in_several_groups": 7,
        "duplicate_rows": 7,
    }


def test_judge_and_expert_files(study: StudyImport) -> None:
    report = study.report()
    assert {report["rows_read"][f] for f in JUDGES} == {984}
    assert report["rows_read"]["raw_submissions/expert_annotations.csv"] == 85
    judge_exclusions = [e for e in study.exclusions if e.annotator in {"gpt4o", "claude", "llama"}]
    assert [(e.annotator, e.reason, e.raw_value) for e in judge_exclusions] == [
        ("llama", "tie", "1,1,0")
    ]
    assert report["annotations"]["expert"] == 85


def test_encodings(study: StudyImport) -> None:
    """Group 6 was saved from a Mac; group 7 is UTF-8 that lost bytes on two lines."""
    legacy = {f.path: f.encoding for f in study.files if not f.encoding.startswith("utf-8")}
    assert legacy == {"raw_submissions/output_Group_6.csv": "mac_roman"}
    group_7 = next(f for f in study.files if f.path == "raw_submissions/output_Group_7.csv")
    assert group_7.encoding == "utf-8 (6 invalid sequences replaced by U+FFFD)"


def test_every_annotator_builds_rankings(study: StudyImport) -> None:
    rankings = study.all_rankings()
    assert {"human", "expert", "gpt4o", "claude", "llama", "group_10"} <= set(rankings)
    # 984 kept group rows cover 978 prompts: six doubled prompts kept both groups' rows.
    assert rankings["human"].ranks.shape == (978, 3)
    assert study.report()["choices"]["human"] == 6
