"""Writers of tiny study folders: made-up harmless text in the study's real layouts."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

GROUP_HEADER = (
    "Prompt",
    "Model 1 - Mistral-7B",
    "Model 2 - MPT-7B",
    "Model 3 - StableLM-alpha-7B",
    "Ranking",
)
JUDGE_HEADER = ("Unnamed: 0.1", "Unnamed: 0", "preds", "extracted_pred", "prompt")

WriteCsv = Callable[..., Path]


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


@pytest.fixture
def write_csv(tmp_path: Path) -> WriteCsv:
    """Write rows under tmp_path; ``bom`` and ``encoding`` reproduce the groups' exports."""

    def write(
        relative: str, rows: Sequence[Sequence[str]], *, encoding: str = "utf-8", bom: bool = False
    ) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = csv_text(rows).encode(encoding)
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
        return path

    return write


@pytest.fixture
def write_group(write_csv: WriteCsv) -> WriteCsv:
    """A group file from (prompt, ranking) pairs, or full 5-cell rows."""

    def write(group: int, rows: Sequence[Sequence[str]], **kwargs: object) -> Path:
        full = [r if len(r) == 5 else (r[0], "calm a", "calm b", "calm c", r[1]) for r in rows]
        name = kwargs.pop("name", f"raw_submissions/output_Group_{group}.csv")
        return write_csv(str(name), [GROUP_HEADER, *full], **kwargs)

    return write


@pytest.fixture
def write_judge(write_csv: WriteCsv) -> WriteCsv:
    """A judge file from (prompt, extracted_pred) pairs."""

    def write(name: str, rows: Sequence[tuple[str, str]]) -> Path:
        body = [(f"{i}.0", f"{i}.0", f"answer {i}", pred, p) for i, (p, pred) in enumerate(rows)]
        return write_csv(name, [JUDGE_HEADER, *body])

    return write
