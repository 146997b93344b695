"""Results views for Grafana: run_task_summary, run_harm_rates, run_pairwise_wins, run_agreement.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

PostgreSQL only: the views unpack the run report (``run_reports.report``, JSONB) with
PostgreSQL's JSON functions, which SQLite spells differently. On SQLite (the local mode, which
has no Grafana) this revision does nothing. The views read what the score task wrote, so they
show exactly the figures of ``GET /v1/runs/{id}/report``.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Per run and stage: how many tasks, how many succeeded (done or reused), failed, still pending.
RUN_TASK_SUMMARY = """
CREATE VIEW run_task_summary AS
SELECT t.run_id,
       d.name AS dataset,
       r.created_at,
       t.stage,
       count(*) AS total,
       count(*) FILTER (WHERE t.state IN ('done', 'reused')) AS succeeded,
       count(*) FILTER (WHERE t.state = 'reused') AS reused,
       count(*) FILTER (WHERE t.state = 'failed') AS failed,
       count(*) FILTER (WHERE t.state IN ('queued', 'running')) AS pending,
       count(*) FILTER (WHERE t.state = 'cancelled') AS cancelled,
       min(t.started_at) AS first_started_at,
       max(t.finished_at) AS last_finished_at
FROM tasks t
JOIN runs r ON r.id = t.run_id
JOIN datasets d ON d.id = r.dataset_id
GROUP BY t.run_id, d.name, r.created_at, t.stage
"""

# Per run, annotator (judge or human) and model: harm rate = 1 - N/A rate, most-harmful share.
RUN_HARM_RATES = """
CREATE VIEW run_harm_rates AS
SELECT rr.run_id,
       a.key AS annotator,
       coalesce(ann.kind, 'judge') AS annotator_kind,
       m.model,
       (m.ordinality - 1)::int AS model_position,
       (a.value -> 'harm_rates' ->> 'n_prompts')::int AS n_prompts,
       1 - (a.value -> 'harm_rates' -> 'na_rate' ->> (m.ordinality - 1)::int)::float8 AS harm_rate,
       (a.value -> 'harm_rates' -> 'na_rate' ->> (m.ordinality - 1)::int)::float8 AS na_rate,
       (a.value -> 'harm_rates' -> 'most_harmful_share' ->> (m.ordinality - 1)::int)::float8
           AS most_harmful_share,
       (a.value -> 'bradley_terry' -> 'strengths' ->> (m.ordinality - 1)::int)::float8
           AS bradley_terry_strength
FROM run_reports rr
CROSS JOIN LATERAL jsonb_each(rr.report -> 'annotators') AS a
CROSS JOIN LATERAL jsonb_array_elements_text(rr.report -> 'models') WITH ORDINALITY AS m(model, ordinality)
LEFT JOIN annotators ann ON ann.name = a.key
"""

# Per run and annotator, each ordered pair of models: wins, losses and ties of `model` against
# `opponent` (least harm: the lower rank wins) and the win rate without ties.
RUN_PAIRWISE_WINS = """
CREATE VIEW run_pairwise_wins AS
SELECT rr.run_id,
       a.key AS annotator,
       coalesce(ann.kind, 'judge') AS annotator_kind,
       i.model,
       j.model AS opponent,
       (a.value -> 'wins' -> 'wins' -> (i.ordinality - 1)::int ->> (j.ordinality - 1)::int)::int AS wins,
       (a.value -> 'wins' -> 'wins' -> (j.ordinality - 1)::int ->> (i.ordinality - 1)::int)::int AS losses,
       (a.value -> 'wins' -> 'ties' -> (i.ordinality - 1)::int ->> (j.ordinality - 1)::int)::int AS ties,
       (a.value -> 'wins' -> 'win_rate_excluding_ties' -> (i.ordinality - 1)::int
           ->> (j.ordinality - 1)::int)::float8 AS win_rate
FROM run_reports rr
CROSS JOIN LATERAL jsonb_each(rr.report -> 'annotators') AS a
CROSS JOIN LATERAL jsonb_array_elements_text(rr.report -> 'models') WITH ORDINALITY AS i(model, ordinality)
CROSS JOIN LATERAL jsonb_array_elements_text(rr.report -> 'models') WITH ORDINALITY AS j(model, ordinality)
LEFT JOIN annotators ann ON ann.name = a.key
WHERE i.ordinality <> j.ordinality
"""

# Per run and pair of annotators (a judge against a human or another judge): every agreement
# figure with its interval and chance baseline; `lists` is the RBO list convention.
RUN_AGREEMENT = """
CREATE VIEW run_agreement AS
SELECT rr.run_id,
       p.value ->> 'a' AS a,
       coalesce(ka.kind, 'judge') AS a_kind,
       p.value ->> 'b' AS b,
       coalesce(kb.kind, 'judge') AS b_kind,
       coalesce(kb.kind, 'judge') IN ('human', 'expert', 'aggregate') AS against_human,
       f.value ->> 'metric' AS metric,
       f.value -> 'params' ->> 'lists' AS lists,
       (f.value ->> 'n')::int AS n,
       (f.value ->> 'value')::float8 AS value,
       (f.value ->> 'chance')::float8 AS chance,
       (f.value ->> 'ci_low')::float8 AS ci_low,
       (f.value ->> 'ci_high')::float8 AS ci_high
FROM run_reports rr
CROSS JOIN LATERAL jsonb_array_elements(rr.report -> 'agreement') AS p
CROSS JOIN LATERAL jsonb_array_elements(p.value -> 'figures') AS f
LEFT JOIN annotators ka ON ka.name = p.value ->> 'a'
LEFT JOIN annotators kb ON kb.name = p.value ->> 'b'
"""

VIEWS = {
    "run_task_summary": RUN_TASK_SUMMARY,
    "run_harm_rates": RUN_HARM_RATES,
    "run_pairwise_wins": RUN_PAIRWISE_WINS,
    "run_agreement": RUN_AGREEMENT,
}


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        return
    for statement in VIEWS.values():
        op.execute(statement)


def downgrade() -> None:
    if not _postgresql():
        return
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
