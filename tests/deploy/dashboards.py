"""Read the Grafana dashboards: their PromQL and SQL queries, with Grafana's variables filled in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
# Datasources are template variables (chosen on import, or the default of their type), never
# fixed uids: an existing Grafana has its own.
PROMETHEUS_UID = "${prometheus}"
POSTGRES_UID = "${postgres}"
METRIC_NAME = re.compile(r"\b(?:harmrank|tgi)_[a-z0-9_]+\b")
# What Grafana puts in place of its variables when a dashboard shows "All" over the last hour.
PROMQL_VARIABLES = {"$__rate_interval": "30s", "$__range": "1h", "$service": ".*"}


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    text: str

    def metric_names(self) -> set[str]:
        return set(METRIC_NAME.findall(self.text))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DASHBOARDS / f"{name}.json").read_text())
    return data


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]


def datasource_refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every ``datasource`` object anywhere in a dashboard (panels, targets, variables)."""
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            yield node["datasource"]
        for value in node.values():
            yield from datasource_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from datasource_refs(value)


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _queries(uid: str, field: str) -> list[Query]:
    found = []
    for dashboard in dashboards():
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                if target.get("datasource", panel.get("datasource", {})).get("uid") == uid:
                    found.append(Query(dashboard["uid"], panel["title"], target[field]))
    return found


def promql_queries() -> list[Query]:
    return _queries(PROMETHEUS_UID, "expr")


def sql_queries() -> list[Query]:
    return _queries(POSTGRES_UID, "rawSql")


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = dashboard["templating"]["list"]
    return listed


def fill_promql(expr: str) -> str:
    # Longest first: $__rate_interval must not be read as $__range plus text.
    for name in sorted(PROMQL_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, PROMQL_VARIABLES[name])
    assert "$" not in expr, f"an unknown Grafana variable is left in {expr!r}"
    return expr
