"""The explorer's filtered listing on a database shaped like the 5,000-prompt run.

Run: ``uv run python bench/explore.py`` (5,000 prompts), or ``--prompts 500`` for a quick check.
The database is the one ``bench/scale_run.py`` leaves, made directly with bulk inserts rather
than by running the platform (which takes most of an hour on the shared 2-core machine): a
throwaway PostgreSQL database (``HARMRANK_TEST_POSTGRES_URL``), migrated by Alembic, with one run
of N prompts, 3 models (3N responses and generate tasks), judge gpt4o in two presentation
orders and claude in one (3N rankings and judge tasks), and one human ranking every prompt.
Ranks are random valid rankings (seeded), so the filters keep realistic shares.

The explorer runs alone (``create_explorer_app``) under uvicorn on loopback; each filter is
asked for its first page ``--requests`` times over real HTTP; p50 and p99 are printed per
filter, with the query plans of the listing's two big queries (they must use indexes).
Target: p99 under 100 ms for a filtered page.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select, text

from harmrank.gateway.db import Annotator, AnnotatorKind, Dataset, Model, Prompt, Ranking, Response
from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.migrate import upgrade_async
from harmrank.gateway.db.run_models import Run, RunPrompt, Stage, Task, TaskState
from harmrank.gateway.explore import repository
from harmrank.gateway.explore.standalone import create_explorer_app
from harmrank.gateway.listings import resolve


def _test_helpers() -> Any:
    """tests/conftest.py by its path: ppi_python installs a top-level ``tests`` package that
    shadows the repository's (a namespace package) on sys.path."""
    path = Path(__file__).resolve().parents[1] / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location("harmrank_test_helpers", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _test_helpers()
MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
FILTERS: dict[str, dict[str, Any]] = {
    "no filter": {},
    "text search": {"q": "prompt 12"},
    "human vs gpt4o #1 differ, on stablelm": {
        "a": "human", "b": "gpt4o #1", "agreement": "differ", "model": "stablelm-alpha-7b",
    },
    "human vs claude harm split": {"a": "human", "b": "claude", "agreement": "harm_split"},
    "human vs claude RBO below 0.8": {"a": "human", "b": "claude", "agreement": "rbo_below",
                                      "rbo_below": 0.8},
    "judges split, by disagreement": {"split": "judges", "sort": "disagreement"},
    "position effect of gpt4o": {"position_effect": "true", "judge": "gpt4o"},
    "a histogram bar": {"a": "claude", "model": "mpt-7b", "rank": 3},
}  # fmt: skip


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=50, help="per filter")
    return parser.parse_args()


def random_ranking(rng: random.Random) -> list[int]:
    harmful = rng.sample(range(3), rng.randint(0, 3))
    ranks = [0, 0, 0]
    for rank, model in enumerate(harmful, start=1):
        ranks[model] = rank
    return ranks


async def fill(url: str, n: int) -> int:
    """The database of a finished n-prompt run; answers the run's id."""
    engine = create_engine(url)
    await upgrade_async(engine)
    rng = random.Random(0)
    async with session_factory(engine)() as session:
        dataset = Dataset(name="scale", source="bench")
        models = [Model(name=m, display_name=m, position=i) for i, m in enumerate(MODELS)]
        kinds = {"human": AnnotatorKind.AGGREGATE, "gpt4o": AnnotatorKind.JUDGE,
                 "claude": AnnotatorKind.JUDGE}  # fmt: skip
        annotators = {name: Annotator(name=name, kind=kind) for name, kind in kinds.items()}
        session.add_all([dataset, *models, *annotators.values()])
        await session.flush()
        run = Run(dataset_id=dataset.id, spec={})
        session.add(run)
        await session.flush()
        await session.execute(insert(Prompt), [
            {"dataset_id": dataset.id, "external_id": f"p{i}", "text": f"bench prompt {i} " * 8,
             "normalised_text": f"bench prompt {i}", "category": rng.choice(["a", "b", "c", None])}
            for i in range(n)
        ])  # fmt: skip
        prompts = list(await session.scalars(select(Prompt.id).order_by(Prompt.id)))
        await _rows(session, run.id, prompts, models, annotators, rng)
        await session.commit()
        run_id = run.id
    await engine.dispose()
    return run_id


async def _rows(session: Any, run_id: int, prompts: list[int], models: list[Model],
                annotators: dict[str, Annotator], rng: random.Random) -> None:  # fmt: skip
    judged = [("gpt4o", 0), ("gpt4o", 1), ("claude", 0)]
    rp, responses, rankings, tasks = [], [], [], []
    for pos, pid in enumerate(prompts):
        rp.append({"run_id": run_id, "prompt_id": pid, "position": pos})
        for m in models:
            responses.append({"prompt_id": pid, "model_id": m.id, "text": "response " * 60,
                              "generation_key": "g", "source": "bench"})  # fmt: skip
            tasks.append({"run_id": run_id, "key": f"g:{pid}:{m.id}", "stage": Stage.GENERATE,
                          "state": TaskState.DONE, "prompt_id": pid, "model_id": m.id,
                          "generation_key": "g", "max_attempts": 3})  # fmt: skip
        for name, order in judged:
            key = f"{name}-{order}"
            rankings.append({"annotator_id": annotators[name].id, "prompt_id": pid,
                             "ranks": random_ranking(rng), "raw_value": "x", "source": "bench",
                             "presentation": {"repetition": order}, "presentation_key": key,
                             "normalisations": []})  # fmt: skip
            tasks.append({"run_id": run_id, "key": f"j:{pid}:{key}", "stage": Stage.JUDGE,
                          "state": TaskState.DONE, "prompt_id": pid, "max_attempts": 3,
                          "annotator_id": annotators[name].id, "presentation_key": key,
                          "order_index": order})  # fmt: skip
        rankings.append({"annotator_id": annotators["human"].id, "prompt_id": pid,
                         "ranks": random_ranking(rng), "raw_value": "x", "source": "bench",
                         "presentation_key": "", "normalisations": []})  # fmt: skip
    for table, rows in ((RunPrompt, rp), (Response, responses), (Ranking, rankings), (Task, tasks)):
        for start in range(0, len(rows), 2000):
            await session.execute(insert(table), rows[start : start + 2000])
    from harmrank.gateway.db.run_models import RunReport

    session.add(RunReport(run_id=run_id, report={"run": {"humans": {"included": ["human"]}}}))


async def analyze(url: str) -> None:
    """Fresh statistics, as autovacuum keeps them on a live database (bulk loads skip it)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text("ANALYZE"))
    await engine.dispose()


async def fingerprint_ms(url: str, run_id: int, times: int = 20) -> float:
    """Median time of the fingerprint queries alone (what a cached page costs the database)."""
    engine = create_engine(url)
    spent = []
    async with session_factory(engine)() as session:
        scope = await resolve.run_scope(session, run_id)
        for _ in range(times):
            started = time.perf_counter()
            await repository.fingerprint(session, scope)
            spent.append(time.perf_counter() - started)
    await engine.dispose()
    return statistics.median(spent) * 1000


async def plans(url: str, run_id: int) -> list[str]:
    """EXPLAIN of the listing's prompts and rankings queries for the run."""
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        scope = await resolve.run_scope(session, run_id)
        out = []
        queries = (repository.prompts_query(scope), repository.rankings_query(scope))
        for query in queries:
            compiled = query.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
            rows = await session.execute(text(f"EXPLAIN {compiled}"))
            out.append("\n".join(r[0] for r in rows))
    await engine.dispose()
    return out


def measure(base: str, params: dict[str, Any], requests: int) -> tuple[float, float, int]:
    times = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(requests):
            started = time.perf_counter()
            found = client.get("/v1/explore/prompts", params=params)
            times.append(time.perf_counter() - started)
            assert found.status_code == 200, found.text
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    return statistics.median(times), p99, found.json()["matched"]


async def main() -> None:
    args = _arguments()
    async with helpers.throwaway_postgres_database() as url:
        started = time.perf_counter()
        run_id = await fill(url, args.prompts)
        await analyze(url)
        print(
            f"database of a {args.prompts}-prompt run made in {time.perf_counter() - started:.1f} s"
        )
        for plan in await plans(url, run_id):
            print(plan, end="\n\n")
        print(f"fingerprint queries alone: median {await fingerprint_ms(url, run_id):.1f} ms")
        server = helpers.LiveServer(create_explorer_app(url))
        server.start()
        try:
            print(f"{'filter':42} {'matched':>8} {'p50 ms':>8} {'p99 ms':>8}")
            for name, params in FILTERS.items():
                p50, p99, matched = await asyncio.to_thread(
                    measure, server.url, {"run": run_id, "limit": 50, **params}, args.requests
                )
                print(f"{name:42} {matched:>8} {p50 * 1000:>8.1f} {p99 * 1000:>8.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
