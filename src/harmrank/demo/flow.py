"""What ``harmrank demo`` does through the public API, as any client would.

Upload the bundled harmless dataset, create a run of the three demo models and the two demo
judges, follow it live, write its report, add the demo annotators' rankings of the same
responses, and write how those annotators agree. Every step is an HTTP call to the gateway.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console

from harmrank.cli.client import CliError, Gateway
from harmrank.cli.report import fetch_report
from harmrank.cli.runs import follow_run
from harmrank.demo.content import DEMO_MODELS, signal_of
from harmrank.demo.judge_server import DEMO_JUDGES

DATASET = "demo"
HUMANS = ("demo-annotator-1", "demo-annotator-2")
FOLLOW_SECONDS = 0.5


def prompts_csv() -> bytes:
    return resources.files("harmrank.demo").joinpath("data", "prompts.csv").read_bytes()


def run_spec() -> dict[str, Any]:
    """The demo run: the body of ``POST /v1/runs`` (``examples/demo/run.yaml`` holds the same)."""
    return {
        "prompts": {"dataset": DATASET},
        "models": [
            {"name": m.name, "params": {"max_new_tokens": 48, "temperature": 0.7, "seed": 7}}
            for m in DEMO_MODELS
        ],
        "judges": [{"name": j.name, "orders": 2} for j in DEMO_JUDGES],
        "metrics": {"p": 0.9, "resamples": 200, "seed": 0},
        "max_attempts": 3,
    }


def upload_dataset(gateway: Gateway, console: Console) -> None:
    """The bundled dataset, unless the gateway has it already (``serve --demo`` restarted)."""
    known = gateway.json("GET", "/v1/datasets")
    if any(d["name"] == DATASET for d in known.get("datasets", [])):
        console.print(f"dataset {DATASET!r} is there already")
        return
    files = {"file": ("prompts.csv", prompts_csv(), "text/csv")}
    created = gateway.json("POST", "/v1/datasets", files=files, data={"name": DATASET})
    console.print(f"uploaded dataset {DATASET!r} ({created.get('prompts', '?')} prompts)")


def human_rankings(responses: list[dict[str, Any]], models: list[str]) -> bytes:
    """JSONL rankings by the demo annotators: the harm signals, ranked (two annotators who
    disagree only on how harmful a signal of 1 is, so their aggregate has real ties and splits)."""
    by_prompt: dict[str, dict[str, str]] = {}
    for row in responses:
        by_prompt.setdefault(row["prompt_id"], {})[row["model"]] = row["text"]
    lines = []
    for prompt, texts in sorted(by_prompt.items()):
        if set(texts) != set(models):
            continue
        for threshold, annotator in zip((1, 2), HUMANS, strict=True):
            signals = [signal_of(texts[m]) for m in models]
            lines.append(json.dumps({"annotator": annotator, "prompt_id": prompt,
                                     "ranks": ranks_of(signals, threshold)}))  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


def ranks_of(signals: list[int], threshold: int) -> list[int]:
    """Harmful = signal >= threshold; the harmful ranked 1..k by signal (ties by position)."""
    harmful = sorted((s, i) for i, s in enumerate(signals) if s >= threshold)
    ranks = [0] * len(signals)
    for rank, (_, index) in enumerate(harmful, start=1):
        ranks[index] = rank
    return ranks


def add_human_rankings(gateway: Gateway, run_id: int, console: Console) -> int:
    """Upload the demo annotators' rankings of the run's responses; how many were stored."""
    models = gateway.json("GET", f"/v1/datasets/{DATASET}")["models"]
    export = gateway.request(
        "GET", f"/v1/runs/{run_id}/responses/export", params={"format": "jsonl"}
    )
    responses = [json.loads(line) for line in export.text.splitlines() if line.strip()]
    files = {"file": ("rankings.jsonl", human_rankings(responses, models), "application/jsonl")}
    stored = gateway.json("POST", f"/v1/datasets/{DATASET}/rankings", files=files)
    console.print(f"uploaded {stored['inserted']} rankings by {', '.join(HUMANS)}")
    return len(responses)


def write_agreement(gateway: Gateway, out: Path) -> Path:
    """Agreement among the demo annotators (the annotation page's figures for the dataset)."""
    report = gateway.json("GET", f"/v1/datasets/{DATASET}/annotation/agreement", params={"p": 0.9})
    path = out / "annotators-agreement.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def demo(base_url: str, out: Path, console: Console) -> int:
    """The whole demonstration against the gateway at ``base_url``; the exit status."""
    try:
        with Gateway(base_url) as gateway:
            upload_dataset(gateway, console)
            created = gateway.json("POST", "/v1/runs", json=run_spec())
            console.print(f"created run {created['id']}: 3 demo models, 2 demo judges")
            status = follow_run(gateway, created, FOLLOW_SECONDS, console)
            finished = gateway.json("GET", f"/v1/runs/{created['id']}")
            # The demo judges abstain now and then by design: a run that ends
            # done_with_failures has its report and says why above; anything else stops here.
            if status != 0 and not finished.get("has_report"):
                return status
            written = fetch_report(gateway, created["id"], out)
            add_human_rankings(gateway, created["id"], console)
            written.append(write_agreement(gateway, out))
    except CliError as error:
        console.print(f"[red]error[/red] ({error.error_type}): {error.message}", soft_wrap=True)
        return 2
    for path in written:
        console.print(f"wrote {path}")
    return 0
