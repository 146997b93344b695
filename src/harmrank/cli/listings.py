"""Tables of the listing commands: runs, datasets, one dataset."""

from __future__ import annotations

from typing import Any

from rich.table import Table

SUCCEEDED = ("done", "reused")


def _finished(progress: dict[str, dict[str, int]]) -> str:
    counts = [n for stage in progress.values() for n in stage.values()]
    done = sum(n for stage in progress.values() for s, n in stage.items() if s in SUCCEEDED)
    return f"{done}/{sum(counts)}"


def runs_table(runs: list[dict[str, Any]]) -> Table:
    table = Table(title="runs, newest first", title_justify="left")
    for column in (
        "id",
        "status",
        "dataset",
        "models",
        "judges",
        "prompts",
        "tasks done",
        "created",
    ):
        table.add_column(column)
    for run in runs:
        spec = run["spec"]
        table.add_row(
            str(run["id"]),
            run["status"] + (" (report)" if run["has_report"] else ""),
            spec["prompts"]["dataset"],
            ", ".join(m["name"] for m in spec["models"]),
            ", ".join(j["name"] for j in spec["judges"]),
            str(run["prompts"]),
            _finished(run["progress"]),
            run["created_at"][:19],
        )
    return table


def datasets_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="datasets", title_justify="left")
    for column in ("name", "prompts", "source", "created"):
        table.add_column(column)
    for item in items:
        table.add_row(item["name"], str(item["prompts"]), item["source"], item["created_at"][:19])
    return table


def dataset_table(detail: dict[str, Any]) -> Table:
    table = Table(title=f"dataset {detail['name']}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    categories = ", ".join(
        f"{c['category'] or '(none)'} {c['prompts']}" for c in detail.get("categories", [])
    )
    rankings = ", ".join(f"{name} {n}" for name, n in detail.get("rankings", {}).items())
    for field, value in (
        ("source", detail["source"]),
        ("created", detail["created_at"][:19]),
        ("prompts", str(detail["prompts"])),
        ("categories", categories or "–"),
        ("responses", str(detail["responses"])),
        ("models", ", ".join(detail.get("models", [])) or "–"),
        ("rankings", rankings or "–"),
    ):
        table.add_row(field, value)
    return table
