"""Every HTML page carries a strict Content-Security-Policy, nosniff and frame-ancestors."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import httpx
from tests.gateway.run_results.helpers import finished_run
from tests.gateway.runs.helpers import Sessions

from harmrank.gateway.annotation.api_page import CSP as ANNOTATION_CSP


def assert_strict(page: httpx.Response) -> None:
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    # The page's inline style is allowed by its hash, so the report still looks as designed.
    for block in re.findall(r"<style>(.*?)</style>", page.text, re.S):
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    # Every image is embedded, which is all img-src allows.
    assert re.findall(r'<img[^>]+src="(?!data:image/png;base64,)', page.text) == []


async def test_a_run_report_page_is_sent_with_the_strict_policy(
    api: httpx.AsyncClient, seeded: Sessions
) -> None:
    run = await finished_run(seeded, metrics={"p": 0.8, "resamples": 20, "seed": 2})
    assert_strict(await api.get(f"/v1/runs/{run.id}/report.html"))


async def test_a_dataset_report_page_is_sent_with_the_strict_policy(api: httpx.AsyncClient) -> None:
    params: dict[str, Any] = {"annotators": "group-1,group-2", "format": "html", "p": 0.9}
    params["resamples"] = 20
    assert_strict(await api.get("/v1/datasets/studylike/report", params=params))


async def test_the_annotation_pages_keep_their_own_policy(api: httpx.AsyncClient) -> None:
    for path in ("/annotate/", "/annotate/admin"):
        page = await api.get(path)
        assert page.status_code == 200, (path, page.text)
        assert page.headers["content-security-policy"] == ANNOTATION_CSP
        assert page.headers["x-content-type-options"] == "nosniff"


async def test_json_answers_are_left_alone(api: httpx.AsyncClient) -> None:
    answer = await api.get("/v1/datasets")
    assert answer.status_code == 200
    assert "content-security-policy" not in answer.headers
