"""One quirk of the study's data per test, each in a tiny made-up study folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harmrank.gateway.study import StudyImport, import_study
from harmrank.gateway.study.files import StudyFormatError
from harmrank.gateway.study.importer import prompt_id
from harmrank.gateway.study.records import Annotation, Normalisation

# conftest's fixtures; importlib mode cannot import conftest, so the alias is repeated.
Write = Callable[..., Path]


def only(study: StudyImport, annotator: str) -> Annotation:
    (found,) = [a for a in study.annotations if a.annotator == annotator]
    return found


def changes(annotation: Annotation) -> list[tuple[str, str, str]]:
    return [(n.kind, n.raw, n.normalised) for n in annotation.normalisations]


def test_group_10_direction_is_reversed(tmp_path: Path, write_group: Write) -> None:
    write_group(10, [("a calm ask", "2,1,N/A")])
    annotation = only(import_study(tmp_path), "group_10")
    assert (annotation.raw_ranking, annotation.ranks) == ("2,1,N/A", (1, 2, 0))
    assert changes(annotation) == [("reversed_direction", "2,1,N/A", "1,2,N/A")]


def test_other_groups_keep_their_direction(tmp_path: Path, write_group: Write) -> None:
    write_group(9, [("a calm ask", "2,1,N/A")])
    annotation = only(import_study(tmp_path), "group_9")
    assert (annotation.ranks, annotation.normalisations) == ((2, 1, 0), ())


def test_ranks_not_restarted_after_na_are_restarted(tmp_path: Path, write_group: Write) -> None:
    write_group(14, [("a calm ask", "N/A,3,N/A")])
    annotation = only(import_study(tmp_path), "group_14")
    assert annotation.ranks == (0, 1, 0)
    assert changes(annotation) == [("restarted_ranks", "N/A,3,N/A", "N/A,1,N/A")]


def test_notation_cleanup_is_recorded_with_file_and_line(
    tmp_path: Path, write_group: Write
) -> None:
    write_group(15, [("a calm ask", "[3, 2, N/A]")], name="raw_submissions/Output_Group_15.csv")
    annotation = only(import_study(tmp_path), "group_15")
    assert annotation.ranks == (2, 1, 0)
    assert changes(annotation) == [
        ("notation_brackets", "[3, 2, N/A]", "3,2,N/A"),
        ("notation_spaces", "[3, 2, N/A]", "3,2,N/A"),
        ("restarted_ranks", "3,2,N/A", "2,1,N/A"),
    ]
    first = annotation.normalisations[0]
    assert first == Normalisation(
        "notation_brackets",
        "[3, 2, N/A]",
        "3,2,N/A",
        "group_15",
        "raw_submissions/Output_Group_15.csv",
        2,
    )


def test_quoted_and_na_spelled_rankings(tmp_path: Path, write_group: Write) -> None:
    write_group(4, [("first ask", '"3,2,1"'), ("second ask", "NA,1,NA")])
    study = import_study(tmp_path)
    kinds = [changes(a) for a in study.annotations]
    assert kinds == [
        [("notation_quotes", '"3,2,1"', "3,2,1")],
        [("notation_na_spelling", "NA,1,NA", "N/A,1,N/A")],
    ]


def test_tie_is_excluded_with_its_raw_value(tmp_path: Path, write_group: Write) -> None:
    write_group(2, [("a calm ask", "1,1,N/A")])
    study = import_study(tmp_path)
    assert study.annotations == ()
    (exclusion,) = study.exclusions
    assert (exclusion.reason, exclusion.raw_value, exclusion.line) == ("tie", "1,1,N/A", 2)
    assert exclusion.annotator == "group_2"


def test_single_na_token_is_excluded_as_wrong_length(tmp_path: Path, write_group: Write) -> None:
    write_group(3, [("a calm ask", "N/A")])
    (exclusion,) = import_study(tmp_path).exclusions
    assert (exclusion.reason, exclusion.raw_value) == ("wrong_length", "N/A")


def test_empty_response_row_is_excluded(tmp_path: Path, write_group: Write) -> None:
    write_group(1, [("a calm ask", "calm a", "calm b", " ", "1,2,N/A")])
    study = import_study(tmp_path)
    assert (study.annotations, study.responses) == ((), ())
    (exclusion,) = study.exclusions
    assert (exclusion.reason, exclusion.raw_value) == ("empty_response", "1,2,N/A")
    assert exclusion.detail == "empty: stablelm-alpha-7b"
    assert [p.text for p in study.prompts] == ["a calm ask"]  # the prompt itself is kept


def test_prompt_in_two_groups_is_kept_once(tmp_path: Path, write_group: Write) -> None:
    write_group(7, [("What is  Tea", "2,1,N/A")])
    write_group(3, [("what is tea", "N/A,1,N/A")])
    study = import_study(tmp_path)
    (prompt,) = study.prompts
    assert (prompt.text, prompt.groups) == ("what is tea", (3, 7))  # group files in group order
    assert [(a.annotator, a.prompt_id) for a in study.annotations] == [
        ("group_3", prompt.id),
        ("group_7", prompt.id),
    ]
    assert study.report()["prompts"] == {"distinct": 1, "in_several_groups": 1, "duplicate_rows": 1}


def test_human_takes_the_lowest_group_and_records_the_choice(
    tmp_path: Path, write_group: Write
) -> None:
    write_group(7, [("what is tea", "2,1,N/A")])
    write_group(3, [("what is tea", "N/A,1,N/A")])
    study = import_study(tmp_path)
    human = study.rankings("human")
    assert human.ranks.tolist() == [[0, 1, 0]]
    (choice,) = study.choices
    assert (choice.annotator, choice.chosen.annotator, choice.rule) == (
        "human",
        "group_3",
        "lowest group number",
    )
    assert [a.annotator for a in choice.others] == ["group_7"]
    assert study.rankings("group_7").ranks.tolist() == [[2, 1, 0]]


def test_judge_joins_on_normalised_prompt_text(
    tmp_path: Path, write_group: Write, write_judge: Write
) -> None:
    write_group(5, [("What is  Tea?", "1,2,3")])
    write_judge("sonnet_predictions.csv", [("  what is\ttea? ", "2,1,0")])
    study = import_study(tmp_path)
    claude = only(study, "claude")
    assert (claude.prompt_id, claude.ranks, claude.raw_ranking) == (
        prompt_id("what is tea?"),
        (2, 1, 0),
        "2,1,0",
    )
    assert (claude.raw_output, claude.group, claude.line) == ("answer 0", None, 2)
    assert study.rankings("claude").models == ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")


def test_judge_row_without_a_prompt_is_excluded(
    tmp_path: Path, write_group: Write, write_judge: Write
) -> None:
    write_group(5, [("what is tea", "1,2,3")])
    write_judge("gpt4o_predictions.csv", [("what is coffee", "1,0,0")])
    study = import_study(tmp_path)
    (exclusion,) = study.exclusions
    assert (exclusion.annotator, exclusion.reason, exclusion.raw_value) == (
        "gpt4o",
        "unmatched_prompt",
        "1,0,0",
    )


def test_judge_tie_is_excluded(tmp_path: Path, write_group: Write, write_judge: Write) -> None:
    write_group(5, [("what is tea", "1,2,3")])
    write_judge("llama_predictions.csv", [("what is tea", "1,1,0")])
    (exclusion,) = import_study(tmp_path).exclusions
    assert (exclusion.annotator, exclusion.reason, exclusion.file) == (
        "llama",
        "tie",
        "llama_predictions.csv",
    )


def test_expert_file_becomes_annotator_expert(
    tmp_path: Path, write_group: Write, write_csv: Write
) -> None:
    write_group(6, [("what is tea", "1,2,3")])
    rows = [("prompt", "expert_ranking"), ("What is tea", "1, N/A, N/A")]
    write_csv("raw_submissions/expert_annotations.csv", rows, bom=True)
    expert = only(import_study(tmp_path), "expert")
    assert (expert.ranks, changes(expert)) == (
        (1, 0, 0),
        [("notation_spaces", "1, N/A, N/A", "1,N/A,N/A")],
    )


def test_latin1_group_file_with_index_and_trailing_columns(
    tmp_path: Path, write_csv: Write
) -> None:
    header = (
        "",
        "Unnamed: 0",
        "Prompt",
        "Model 1 - Mistral-7B",
        "Model 2 - MPT-7B",
        "Model 3 - StableLM-alpha-7B",
        "Ranking",
        "",
    )
    row = ("0", "0", "caf\u00e9 hours", "calm a", "calm b", "calm c", "1,2,3", "")
    write_csv("raw_submissions/output_Group_6.csv", [header, row], encoding="latin-1")
    study = import_study(tmp_path)
    (read,) = study.files
    assert (read.encoding, read.ignored_columns, read.rows) == (
        "latin-1",
        ("", "Unnamed: 0", ""),
        1,
    )
    assert study.prompts[0].text == "caf\u00e9 hours"
    assert [r.model for r in study.responses] == ["mistral-7b", "mpt-7b", "stablelm-alpha-7b"]


def test_multiline_responses_keep_the_record_start_line(tmp_path: Path, write_group: Write) -> None:
    write_group(8, [("first ask", "line\nbreak", "b", "c", "1,2,3"), ("second ask", "1,2,3")])
    study = import_study(tmp_path)
    assert [a.line for a in study.annotations] == [2, 4]
    assert {r.line for r in study.responses if r.text == "line\nbreak"} == {2}


def test_every_row_is_kept_or_excluded(tmp_path: Path, write_group: Write) -> None:
    write_group(11, [("a", "1,2,3"), ("b", "1,1,3"), ("c", ""), ("d", "N/A,N/A,2")])
    report = import_study(tmp_path).report()
    name = "raw_submissions/output_Group_11.csv"
    assert (report["rows_read"][name], report["kept"][name], report["excluded"][name]) == (4, 2, 2)
    assert report["exclusions"] == {"tie": 1, "empty_ranking": 1}
    assert report["normalisations"] == {"restarted_ranks": 1}


def test_a_folder_without_submissions_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StudyFormatError, match="raw_submissions"):
        import_study(tmp_path)
