"""A dataset's label budget: drawing which items go to humans, and stating it to the report.

Under a budget every item of the dataset gets a stored draw (``annotation_draws``): its
probability from the policy (``sampling``) and whether it was drawn, by the dataset's seed. An
item that becomes rankable later (its last response arrives) is drawn at the next re-plan with
the probability the policy gives it among the items then, so the draws already made stand.
Only flushes.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import Conflict
from harmrank.gateway.annotation import repository as repo
from harmrank.gateway.annotation import sampling
from harmrank.gateway.db.annotation_models import AnnotationConfig, SamplingPolicy
from harmrank.metrics.report_ppi import SamplingDesign

POLICY_TEXT = {
    SamplingPolicy.UNIFORM: "uniform random: every item with probability budget / items",
    SamplingPolicy.ACTIVE: (
        "active: probability from the judges' disagreement with each other plus their "
        "uncertainty across presentation orders, floored"
    ),
}


def sampling_fields(config: AnnotationConfig) -> tuple[object, ...]:
    return (config.budget, config.policy, config.sample_seed, config.floor)


async def check_change(session: AsyncSession, dataset: int, changes: bool) -> None:
    """Refuse to change the budget or policy once humans ranked items drawn under it."""
    if not changes:
        return
    done = await repo.done_count(session, dataset)
    if done:
        raise Conflict(
            f"the dataset has {done} rankings made under the current budget and policy; "
            "changing either would make their weights wrong (export them and start a new "
            "dataset to sample again)"
        )


async def drawn_items(
    session: AsyncSession, config: AnnotationConfig, items: Sequence[int]
) -> dict[int, float | None]:
    """The items that go to humans, each with its probability (None: no budget, all go)."""
    if config.budget is None:
        return dict.fromkeys(items)
    stored = {d.prompt_id: d for d in await repo.draws(session, config.dataset_id)}
    new = [i for i in items if i not in stored]
    if new:
        await _draw(session, config, items, new)
        stored = {d.prompt_id: d for d in await repo.draws(session, config.dataset_id)}
    return {i: stored[i].probability for i in items if stored[i].selected}


async def _draw(
    session: AsyncSession, config: AnnotationConfig, items: Sequence[int], new: Sequence[int]
) -> None:
    assert config.budget is not None
    scores = await _scores(session, config, items)
    pi = sampling.probabilities([scores[i] for i in items], config.budget, _floor(config))
    by_item = dict(zip(items, pi.tolist(), strict=True))
    rows = [
        {
            "prompt_id": i,
            "dataset_id": config.dataset_id,
            "probability": by_item[i],
            "selected": sampling.drawn(config.sample_seed, i, by_item[i]),
            "score": scores[i],
        }
        for i in new
    ]
    await repo.insert_draws(session, rows)


def _floor(config: AnnotationConfig) -> float:
    return 1.0 if config.policy == SamplingPolicy.UNIFORM else config.floor


async def _scores(
    session: AsyncSession, config: AnnotationConfig, items: Sequence[int]
) -> dict[int, float]:
    if config.policy == SamplingPolicy.UNIFORM:
        return dict.fromkeys(items, 0.0)
    judged = await repo.judge_rankings(session, config.dataset_id)
    return {i: sampling.score(judged.get(i, {})) for i in items}


def stated(config: AnnotationConfig, items: int, drawn: int) -> str:
    """The policy as the report states it: what, with which parameters, and its outcome."""
    floor = (
        f", floor {config.floor:g} of the uniform probability"
        if config.policy == SamplingPolicy.ACTIVE
        else ""
    )
    return (
        f"{POLICY_TEXT[config.policy]} (label budget {config.budget} of {items} items{floor}, "
        f"seed {config.sample_seed}; {drawn} drawn); recorded on the annotation page, "
        "estimates weighted by inverse inclusion probabilities"
    )


async def design(session: AsyncSession, dataset: int) -> SamplingDesign | None:
    """The dataset's stored draws as the estimator's design; None without a label budget."""
    config = await repo.config(session, dataset)
    if config is None or config.budget is None:
        return None
    rows = await repo.draws_by_external_id(session, dataset)
    if not rows:
        return None
    sample = frozenset(e for e, _, s in rows if s)
    return SamplingDesign(
        policy=stated(config, len(rows), len(sample)),
        inclusion={e: p for e, p, _ in rows},
        sample=sample,
    )
