"""Bad uploads: named problems (line and field), a capped problem list, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.gateway.runs.helpers import Sessions


async def upload(api: httpx.AsyncClient, name: str, data: bytes, filename: str) -> httpx.Response:
    files = {"file": (filename, data, "application/octet-stream")}
    return await api.post("/v1/datasets", files=files, data={"name": name})


async def import_rankings(
    api: httpx.AsyncClient, data: bytes, filename: str = "r.jsonl", **form: str
) -> httpx.Response:
    files = {"file": (filename, data, "application/octet-stream")}
    return await api.post("/v1/datasets/studylike/rankings", files=files, data=form)


def problems(answer: httpx.Response) -> list[tuple[int, str, str]]:
    assert answer.status_code == 422, answer.text
    return [(d["line"], d["field"], d["problem"]) for d in answer.json()["details"]]


async def test_a_file_of_many_bad_rows_lists_the_first_100_and_counts_all(
    api: httpx.AsyncClient, seeded: Sessions
) -> None:
    data = b"text\n" + b"same\n" * 20_001
    answer = await upload(api, "dupes", data, "d.csv")
    listed = problems(answer)
    assert len(listed) == 100
    assert [line for line, _, _ in listed] == list(range(3, 103))
    assert "20000 problem(s), the first 100 by line listed" in answer.json()["error"]
    assert (await api.get("/v1/datasets/dupes")).status_code == 404  # nothing stored


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'text\n"hello\nworld\n', (2, "text", "unexpected end of data")),
        (b"text,category,id\nhello,c\n", (2, "id", "this column and those after are missing")),
        (b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", (1, "", "nested too deeply")),
        (b'{"text": "a", "id": ' + b"9" * 5000 + b"}", (1, "", "Exceeds the limit")),
    ],
)
async def test_malformed_files_are_422s_naming_line_and_field(
    api: httpx.AsyncClient, seeded: Sessions, data: bytes, expected: tuple[int, str, str]
) -> None:
    filename = "p.jsonl" if data.startswith(b"{") else "p.csv"
    [(line, field, problem)] = problems(await upload(api, "bad", data, filename))
    assert (line, field) == expected[:2]
    assert expected[2] in problem


@pytest.mark.parametrize(
    ("annotator", "problem"),
    [("a\u0000b", "contains a NUL character"), ("a,b", "contains a comma")],
)
async def test_an_annotator_name_the_report_could_not_name_is_refused(
    api: httpx.AsyncClient, seeded: Sessions, annotator: str, problem: str
) -> None:
    line = {"annotator": annotator, "prompt_id": "s0", "ranks": [1, 0, 0]}
    found = problems(await import_rankings(api, json.dumps(line).encode()))
    assert any(f == "annotator" and problem in p for _, f, p in found), found


async def test_a_nul_in_the_form_annotator_is_named(
    api: httpx.AsyncClient, seeded: Sessions
) -> None:
    line = {"prompt_id": "s0", "ranks": [1, 0, 0]}
    answer = await import_rankings(api, json.dumps(line).encode(), annotator="a\x00b")
    assert answer.status_code == 422, answer.text
    assert "form field 'annotator': contains a NUL character" in answer.json()["error"]


async def test_a_deeply_nested_rankings_line_is_named(
    api: httpx.AsyncClient, seeded: Sessions
) -> None:
    data = b'{"annotator": "x", "ranks": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert problems(await import_rankings(api, data))[0][:2] == (1, "")
