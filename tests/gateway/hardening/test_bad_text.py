"""Text the database cannot hold, names that are not names, unbounded lists: a 422 or 404
naming the field, on both backends, never a 500 (nor a 200 that breaks off)."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from tests.gateway.runs.helpers import Sessions

NUL = "\x00"

GETS = [
    ("/v1/datasets/toy/responses", {"model": NUL}, "query.model"),
    ("/v1/datasets/toy/responses", {"prompt": f"p{NUL}"}, "query.prompt"),
    ("/v1/datasets/toy/rankings", {"annotator": NUL}, "query.annotator"),
    ("/v1/datasets/toy/responses/export", {"format": "csv", "model": NUL}, "query.model"),
    ("/v1/datasets/toy/rankings/export", {"format": "csv", "model": NUL}, "query.model"),
    ("/v1/runs/1/responses", {"model": NUL}, "query.model"),
    ("/v1/runs/1/rankings/export", {"format": "csv", "annotator": NUL}, "query.annotator"),
    ("/v1/datasets/studylike/report", {"annotators": f"a{NUL}", "p": 0.9}, "query.annotators"),
    ("/v1/datasets/studylike/agreement", {"a": NUL, "b": "x", "p": 0.9}, "query.a"),
    ("/v1/datasets/a%00b", {}, "path"),
]


@pytest.mark.parametrize(("path", "params", "where"), GETS)
async def test_a_nul_in_a_path_or_query_is_a_422_naming_it(
    api: httpx.AsyncClient, seeded: Sessions, path: str, params: dict[str, Any], where: str
) -> None:
    answer = await api.get(path, params=params)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error_type"] == "validation"
    assert body["error"].startswith(f"{where}: contains a NUL character")


RUN: dict[str, Any] = {
    "prompts": {"dataset": "toy", "categories": ["a"]},
    "models": [{"name": "small-a", "params": {"stop": ["\n\n"]}}, {"name": "small-b"}],
    "judges": [{"name": "judge-x", "settings": {"template": "v1"}}],
}


def changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(RUN)
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


NUL_FIELDS = [
    (("prompts", "dataset"), f"toy{NUL}", "body.prompts.dataset"),
    (("models", 0, "name"), f"a{NUL}", "body.models.0.name"),
    (("judges", 0, "name"), f"j{NUL}", "body.judges.0.name"),
    (("prompts", "categories", 0), NUL, "body.prompts.categories.0"),
    (("judges", 0, "settings", "template"), NUL, "body.judges.0.settings.template"),
    (("judges", 0, "settings", f"k{NUL}"), "v", f"body.judges.0.settings.k{NUL}"),
    (("models", 0, "params", "stop", 0), NUL, "body.models.0.params.stop.0"),
    (("models", 1, "name"), "\ud800", "body.models.1.name"),
]


@pytest.mark.parametrize(("path", "value", "where"), NUL_FIELDS)
async def test_a_nul_anywhere_in_a_run_request_is_a_422_naming_the_field(
    api: httpx.AsyncClient, seeded: Sessions, path: tuple[Any, ...], value: str, where: str
) -> None:
    # As JSON escapes (\u0000, \ud800), the way a client's JSON library sends them.
    body = json.dumps(changed(path, value))
    headers = {"content-type": "application/json"}
    answer = await api.post("/v1/runs", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"].split(": ")[0] == where


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("models", 0, "name"), "org/a", "body.models.0.name"),
        (("models", 0, "name"), "../../etc", "body.models.0.name"),
        (("judges", 0, "name"), "a b", "body.judges.0.name"),
        (("prompts", "dataset"), "../toy", "body.prompts.dataset"),
        (("prompts", "categories"), [f"c{i}" for i in range(200_000)], "body.prompts.categories"),
        (("prompts", "categories", 0), "c" * 101, "body.prompts.categories.0"),
        (("judges", 0, "settings"), {f"k{i}": i for i in range(51)}, "body.judges.0.settings"),
        (("models", 0, "params", "stop", 0), "s" * 201, "body.models.0.params.stop.0"),
    ],
)
async def test_names_and_lists_are_bounded(
    api: httpx.AsyncClient, seeded: Sessions, path: tuple[Any, ...], value: Any, where: str
) -> None:
    answer = await api.post("/v1/runs", json=changed(path, value))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"].startswith(where)


async def test_a_run_of_safe_names_passes_the_edge(
    api: httpx.AsyncClient, seeded: Sessions
) -> None:
    # No generator or judge service here: the run gets past validation to the fail-fast check
    # of what the services know (a 503 naming them), not a 422 of its own fields.
    answer = await api.post("/v1/runs", json=RUN)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error_type"] == "upstream_unavailable"
