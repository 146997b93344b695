"""Planning: task counts per stage, the prompt set, result keys and reuse of what exists."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from tests.gateway.runs.helpers import (
    Fakes,
    Sessions,
    create,
    nonzero,
    seed_dataset,
    spec,
    work_until_settled,
)

from harmrank.common.errors import InvalidInput
from harmrank.gateway.db.models import STUDY_GENERATION_KEY, Annotator, Model, Prompt, Response
from harmrank.gateway.db.run_models import RunPrompt, Task, TaskState
from harmrank.gateway.runs import planner, repository
from harmrank.gateway.runs.schemas import JudgeSpec, ModelSpec


async def run_prompts(sessions: Sessions, run_id: int) -> list[str]:
    async with sessions() as session:
        found = await session.scalars(
            select(Prompt.external_id)
            .join(RunPrompt, RunPrompt.prompt_id == Prompt.id)
            .where(RunPrompt.run_id == run_id)
            .order_by(RunPrompt.position)
        )
        return list(found)


async def test_a_run_plans_one_task_per_result(session_maker: Sessions) -> None:
    await seed_dataset(session_maker)
    run = await create(session_maker, spec())

    assert run.status == "queued"
    assert run.prompts == 6
    queued = {stage: counts[TaskState.QUEUED] for stage, counts in run.progress.items()}
    assert queued == {"generate": 6 * 2, "judge": 6 * 1 * 2, "score": 1}
    assert sum(sum(counts.values()) for counts in run.progress.values()) == 25


async def test_a_task_is_stored_with_every_field_the_planner_sets(session_maker: Sessions) -> None:
    """PostgreSQL inserts the task rows as one array per column: a field the planner sets that
    the insert left out would be lost without an error."""
    await seed_dataset(session_maker, prompts=2)
    await create(session_maker, spec())  # the models and the judge
    async with session_maker.begin() as session:
        prompts = list(await session.scalars(select(Prompt.id).order_by(Prompt.id)))
        first = [func.min(Prompt.dataset_id), func.min(Model.id), func.min(Annotator.id)]
        dataset, model, annotator = [(await session.execute(select(m))).scalar_one() for m in first]
        run = await repository.insert_run(session, dataset_id=dataset, spec={})
        imported = planner.RunModel("a", model, STUDY_GENERATION_KEY, imported=True)
        body = spec(judges=[{"name": "judge-x", "orders": 2}], max_attempts=4)
        judges = {"judge-x": annotator}
        made = planner._TaskRows(run.id, body, [imported], judges, set(), set(), cancelled=False)
        # A run cancelled before its rest was written: its rest's tasks are written cancelled.
        generated = planner.RunModel("b", model, "k" * 64, imported=False)
        cancelled = planner._TaskRows(run.id, body, [generated], judges, set(), set(), True)
        rows = [
            *made.generate(prompts),  # failed: every error field set
            *made.judge(prompts),
            made.score(),
            *cancelled.generate(prompts),  # finished_at set
        ]
        assert {row["state"] for row in rows} == {"failed", "queued", "cancelled"}
        assert await repository.insert_tasks(session, iter(rows)) == len(rows)
    async with session_maker() as session:
        stored = (await session.scalars(select(Task).where(Task.run_id == run.id))).all()
    by_key = {task.key: task for task in stored}
    assert [{f: getattr(by_key[row["key"]], f) for f in row} for row in rows] == rows


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_value_too_long_for_its_column_is_refused_not_cut(session_maker: Sessions) -> None:
    """The arrays are cast to their columns' types less any length: a cast to VARCHAR(n)[]
    would cut a longer value to n characters without a word."""
    await seed_dataset(session_maker, prompts=1)
    async with session_maker() as session:
        dataset = (await session.execute(select(func.min(Prompt.dataset_id)))).scalar_one()
        run = await repository.insert_run(session, dataset_id=dataset, spec={})
        made = planner._TaskRows(run.id, spec(max_attempts=1), [], {}, set(), set(), False)
        row = made.score()
        with pytest.raises(DBAPIError, match="too long"):
            await repository.insert_tasks(session, [row | {"key": "k" * 201}])


async def test_categories_filter_the_prompts(session_maker: Sessions) -> None:
    await seed_dataset(session_maker)
    run = await create(session_maker, spec(prompts={"dataset": "toy", "categories": ["b"]}))
    assert await run_prompts(session_maker, run.id) == ["p1", "p3", "p5"]


async def test_a_seeded_sample_is_reproducible(session_maker: Sessions) -> None:
    await seed_dataset(session_maker, prompts=20)
    sample = {"dataset": "toy", "sample_size": 5, "seed": 7}
    first = await create(session_maker, spec(prompts=sample))
    again = await create(session_maker, spec(prompts=sample))
    other = await create(session_maker, spec(prompts=sample | {"seed": 8}))

    chosen = await run_prompts(session_maker, first.id)
    assert len(chosen) == 5
    assert await run_prompts(session_maker, again.id) == chosen
    assert await run_prompts(session_maker, other.id) != chosen


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({"dataset": "nope"}, "unknown prompts.dataset 'nope'"),
        ({"dataset": "toy", "categories": ["z"]}, "unknown prompts.categories 'z'"),
        ({"dataset": "toy", "sample_size": 99}, "exceeds"),
    ],
)
async def test_an_impossible_prompt_set_is_refused(
    session_maker: Sessions, prompts: dict[str, object], message: str
) -> None:
    await seed_dataset(session_maker)
    with pytest.raises(InvalidInput, match=message):
        await create(session_maker, spec(prompts=prompts))


def test_keys_are_stable_and_tell_settings_apart() -> None:
    a = ModelSpec(name="m", params={"temperature": 0.0})
    assert planner.generation_key(a) == planner.generation_key(
        ModelSpec.model_validate(a.model_dump())
    )
    assert planner.generation_key(a) != planner.generation_key(ModelSpec(name="m"))
    assert planner.generation_key(ModelSpec(name="m", source="imported")) == STUDY_GENERATION_KEY

    judge = JudgeSpec(name="j")
    judged = [("m", "k1"), ("n", "k2")]
    key = planner.presentation_key(judge, 0, judged)
    assert len(key) == 64
    assert key == planner.presentation_key(JudgeSpec(name="j"), 0, judged)
    assert key != planner.presentation_key(judge, 1, judged)
    assert key != planner.presentation_key(JudgeSpec(name="j", settings={"v": 2}), 0, judged)
    # Other responses judged: another result, even with the same judge and order.
    assert key != planner.presentation_key(judge, 0, [("m", "k1"), ("n", "k3")])


async def test_a_new_run_reuses_existing_results_and_calls_nothing_twice(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker)
    fakes = Fakes()
    first = await create(session_maker, spec())
    assert (await work_until_settled(session_maker, fakes.executors(), first.id)).status == "done"
    assert (len(fakes.generate.calls), len(fakes.judge.calls)) == (12, 12)

    # Same models, one more judge order, one model with new settings.
    models = [{"name": "small-a", "params": {"max_new_tokens": 64}}, {"name": "small-b"}]
    second = await create(session_maker, spec(judges=[{"name": "judge-x", "orders": 3}]))
    assert nonzero(second, "generate") == {"reused": 12}
    assert nonzero(second, "judge") == {"reused": 12, "queued": 6}
    fakes = Fakes()
    assert (await work_until_settled(session_maker, fakes.executors(), second.id)).status == "done"
    assert (len(fakes.generate.calls), len(fakes.judge.calls)) == (0, 6)

    third = await create(
        session_maker, spec(models=[models[0], {"name": "small-b", "params": {"seed": 1}}])
    )
    assert nonzero(third, "generate") == {"reused": 6, "queued": 6}
    assert nonzero(third, "judge") == {"queued": 12}  # its responses differ: nothing to reuse
    async with session_maker() as session:
        responses = await session.scalar(select(func.count()).select_from(Response))
        assert responses == 12


async def test_imported_responses_are_reused_and_missing_ones_fail(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=2)
    async with session_maker.begin() as session:
        prompts = list(await session.scalars(select(Prompt).order_by(Prompt.id)))
        models = [Model(name=n, display_name=n, position=i) for i, n in enumerate("ab")]
        session.add_all(models)
        await session.flush()
        session.add_all(
            Response(
                prompt_id=prompts[0].id,
                model_id=m.id,
                text="imported",
                generation_key=STUDY_GENERATION_KEY,
                source="study.csv:2",
            )
            for m in models
        )
    imported = [{"name": "a", "source": "imported"}, {"name": "b", "source": "imported"}]
    run = await create(session_maker, spec(models=imported))

    assert nonzero(run, "generate") == {"reused": 2, "failed": 2}
    # The prompt without responses can never be judged: its judge tasks fail with it.
    assert nonzero(run, "judge") == {"queued": 2, "failed": 2}
    async with session_maker() as session:
        errors = set(await session.scalars(select(Task.error_type).where(Task.state == "failed")))
    assert errors == {planner.MISSING_IMPORT, "dependency_failed"}
