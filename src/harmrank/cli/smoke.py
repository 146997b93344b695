"""``harmrank smoke``: push a small harmless dataset through a whole run via the public API.

Upload a built-in dataset, create a run with the deployment's models and judges, wait for it
while printing progress, fetch the report and check that every stage finished and that the
report holds agreement figures. Prints PASS or FAIL with the reason; exit status 0 or 1.
Models and judges come from the options, else from the generator's ``/v1/models`` and the
judge's ``/v1/judges`` when their URLs are given, else (models only) the study's three.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

Echo = Callable[[str], None]
FINISHED = frozenset({"done", "done_with_failures", "failed", "cancelled"})
SUCCEEDED_STATES = frozenset({"done", "reused"})
STAGES = ("generate", "judge", "score")
DEFAULT_MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
POLL_SECONDS = 1.0
# Harmless on purpose: a smoke test runs against real deployments and real judge accounts.
PROMPTS_CSV = (
    "id,text,category\n"
    "smoke-1,How do I bake a loaf of sourdough bread?,cooking\n"
    "smoke-2,Explain why the sky looks blue during the day.,science\n"
    "smoke-3,Suggest three names for a friendly golden retriever.,everyday\n"
)


class SmokeFailure(Exception):
    """A check failed; the message says which and why."""


def smoke(
    base_url: str,
    token: str | None,
    timeout: float,
    *,
    models: Sequence[str] | None = None,
    judges: Sequence[str] | None = None,
    generator_url: str | None = None,
    judge_url: str | None = None,
    echo: Echo = print,
) -> int:
    """Run the smoke test against the gateway at ``base_url``; 0 when it passed, else 1."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as client:
            run_id = _smoke(
                client, timeout, echo, _targets(models, judges, generator_url, judge_url)
            )
    except (SmokeFailure, httpx.HTTPError) as exc:
        echo(f"FAIL: {exc}")
        return 1
    echo(f"PASS: run {run_id} finished every stage and its report has agreement figures")
    return 0


Targets = tuple[list[str], list[str]]


def _targets(
    models: Sequence[str] | None,
    judges: Sequence[str] | None,
    generator_url: str | None,
    judge_url: str | None,
) -> Targets:
    found_models = list(models or [])
    if not found_models and generator_url:
        found_models = _discover(generator_url, "/v1/models", "models")
    found_judges = list(judges or [])
    if not found_judges and judge_url:
        found_judges = _discover(judge_url, "/v1/judges", "judges")
    if len(found_models) < 2:
        found_models = found_models or list(DEFAULT_MODELS)
    if len(found_models) < 2:
        raise SmokeFailure(f"a run needs two models or more, got {found_models}")
    if not found_judges:
        raise SmokeFailure("no judges: pass --judges, or --judge-url to discover them")
    return found_models, found_judges


def _discover(url: str, path: str, key: str) -> list[str]:
    response = httpx.get(url.rstrip("/") + path, timeout=30.0)
    _expect(response, 200, f"discover {key} at {url}")
    return [str(entry["name"]) for entry in response.json()[key]]


def _smoke(client: httpx.Client, timeout: float, echo: Echo, targets: Targets) -> int:
    models, judges = targets
    _expect(client.get("/readyz"), 200, "gateway readiness")
    echo(f"gateway {client.base_url} is ready; models {models}, judges {judges}")
    dataset = f"smoke-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    files = {"file": ("prompts.csv", PROMPTS_CSV.encode(), "text/csv")}
    _expect(client.post("/v1/datasets", files=files, data={"name": dataset}), 201, "upload")
    echo(f"uploaded dataset {dataset} (3 prompts)")
    key = {"Idempotency-Key": f"{dataset}-run"}
    created = client.post("/v1/runs", json=run_spec(dataset, models, judges), headers=key)
    _expect(created, 201, "create run")
    run_id = int(created.json()["id"])
    echo(f"run {run_id} created")
    run = _wait(client, run_id, timeout, echo)
    check_run(run)
    report = client.get(f"/v1/runs/{run_id}/report")
    _expect(report, 200, "fetch report")
    check_report(report.json(), judges)
    return run_id


def run_spec(dataset: str, models: Sequence[str], judges: Sequence[str]) -> dict[str, Any]:
    params = {"max_new_tokens": 32, "temperature": 0.7, "seed": 7}
    return {
        "prompts": {"dataset": dataset},
        "models": [{"name": m, "params": params} for m in models],
        "judges": [{"name": j} for j in judges],
        "metrics": {"p": 0.9, "resamples": 20},
        "max_attempts": 3,
    }


def _wait(client: httpx.Client, run_id: int, timeout: float, echo: Echo) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        response = client.get(f"/v1/runs/{run_id}")
        _expect(response, 200, "poll run")
        run: dict[str, Any] = response.json()
        line = f"{run['status']}: {progress_line(run['progress'])}"
        if line != shown:
            echo(line)
            shown = line
        if run["status"] in FINISHED and (
            run["has_report"] or run["status"] not in ("done", "done_with_failures")
        ):
            return run
        if time.monotonic() > deadline:
            raise SmokeFailure(f"run {run_id} did not finish within {timeout:g} s ({line})")
        time.sleep(POLL_SECONDS)


def progress_line(progress: dict[str, dict[str, int]]) -> str:
    """``generate 9/9 judge 3/6 score 0/1``: succeeded of all, per stage."""
    parts = []
    for stage in STAGES:
        counts = progress.get(stage, {})
        done = sum(n for state, n in counts.items() if state in SUCCEEDED_STATES)
        parts.append(f"{stage} {done}/{sum(counts.values())}")
    return " ".join(parts)


def check_run(run: dict[str, Any]) -> None:
    if run["status"] != "done":
        raise SmokeFailure(f"run {run['id']} ended {run['status']}: {run['progress']}")
    for stage in STAGES:
        counts = run["progress"].get(stage, {})
        unfinished = {s: n for s, n in counts.items() if n and s not in SUCCEEDED_STATES}
        if not counts or unfinished or not sum(counts.values()):
            raise SmokeFailure(f"stage {stage} is not done: {counts}")


def check_report(report: dict[str, Any], judges: Sequence[str]) -> None:
    missing = [j for j in judges if j not in report.get("annotators", {})]
    if missing:
        raise SmokeFailure(f"the report has no figures of judges {missing}")
    pairs = report.get("agreement") or []
    figures = [f for pair in pairs for f in pair.get("figures", [])]
    if not figures:
        hint = " (agreement needs two judges or more)" if len(judges) < 2 else ""
        raise SmokeFailure(f"the report has no agreement figures{hint}")


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise SmokeFailure(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
