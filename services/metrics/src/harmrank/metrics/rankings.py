"""Harm rankings: validation, normalisation and the two ways to turn one into RBO lists.

A harm ranking gives each model's response to one prompt a rank, in canonical model order:
0 means not harmful (N/A); the harmful responses are ranked 1..k with the highest number the
most harmful; ties are not allowed. So a valid ranking's non-zero values are exactly {1..k}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from harmrank.common.errors import InvalidInput

NA = 0
ListConvention = Literal["harmful", "tied"]
RBOList = list[str | list[str]]


class InvalidRanking(InvalidInput):
    error_type = "invalid_ranking"


def _where(prompt: str | None, annotator: str | None) -> str:
    parts = [
        f"prompt {prompt!r}" if prompt is not None else "",
        annotator and f"annotator {annotator!r}",
    ]
    text = ", ".join(p for p in parts if p)
    return f" ({text})" if text else ""


def ranking_problem(ranks: Sequence[int], n_models: int) -> str | None:
    """Say what is wrong with a ranking, or None when it is valid."""
    if len(ranks) != n_models:
        return f"expected {n_models} ranks, got {len(ranks)}"
    if any(r < 0 for r in ranks):
        return "ranks must be 0 (N/A) or positive"
    harmful = sorted(r for r in ranks if r != NA)
    if len(set(harmful)) != len(harmful):
        return "ties are not allowed"
    if harmful != list(range(1, len(harmful) + 1)):
        return f"harmful ranks must be 1..{len(harmful)} without gaps"
    return None


def validate_ranking(
    ranks: Sequence[int], n_models: int, *, prompt: str | None = None, annotator: str | None = None
) -> tuple[int, ...]:
    """Return the ranking as a tuple, or raise InvalidRanking naming prompt, annotator and value."""
    problem = ranking_problem(ranks, n_models)
    if problem is not None:
        raise InvalidRanking(f"invalid ranking {list(ranks)}{_where(prompt, annotator)}: {problem}")
    return tuple(int(r) for r in ranks)


def restart_ranks(ranks: Sequence[int]) -> tuple[int, ...]:
    """Dense re-rank the harmful ranks to 1..k, keeping their order (``N/A,3,N/A`` -> ``0,1,0``).

    Some annotators did not restart the ranks after an N/A; this maps them to the convention.
    Ties stay ties (they are invalid and left for validation to report).
    """
    distinct = sorted({r for r in ranks if r != NA})
    dense = {r: i + 1 for i, r in enumerate(distinct)}
    return tuple(dense.get(r, NA) for r in ranks)


def reverse_direction(ranks: Sequence[int]) -> tuple[int, ...]:
    """Turn a ranking written with 1 = most harmful into the convention (highest = most harmful)."""
    dense = restart_ranks(ranks)
    k = max(dense, default=NA)
    return tuple(k + 1 - r if r != NA else NA for r in dense)


def harmful_list(ranks: Sequence[int], models: Sequence[str]) -> list[str]:
    """Only the harmful models, most harmful first (possibly empty)."""
    harmful = [(r, m) for r, m in zip(ranks, models, strict=True) if r != NA]
    return [m for _, m in sorted(harmful, reverse=True)]


def tied_list(ranks: Sequence[int], models: Sequence[str]) -> RBOList:
    """All models, most harmful first, the N/A ones one tie group at the bottom."""
    out: RBOList = list(harmful_list(ranks, models))
    not_harmful = [m for r, m in zip(ranks, models, strict=True) if r == NA]
    if len(not_harmful) == 1:
        out.append(not_harmful[0])
    elif not_harmful:
        out.append(not_harmful)
    return out


def to_rbo_list(ranks: Sequence[int], models: Sequence[str], lists: ListConvention) -> RBOList:
    if lists == "harmful":
        return list(harmful_list(ranks, models))
    return tied_list(ranks, models)


@dataclass(frozen=True)
class AnnotatorRankings:
    """One annotator's validated rankings: ``ranks[i, j]`` is the rank of model j on prompt i."""

    annotator: str
    models: tuple[str, ...]
    prompts: tuple[str, ...]
    ranks: npt.NDArray[np.int64]
    categories: tuple[str | None, ...] | None = None

    @classmethod
    def build(
        cls,
        annotator: str,
        models: Sequence[str],
        rows: Mapping[str, Sequence[int]],
        categories: Mapping[str, str | None] | None = None,
    ) -> AnnotatorRankings:
        """Validate every row (keyed by prompt id) and pack them into one array."""
        prompts = tuple(rows)
        checked = [
            validate_ranking(rows[p], len(models), prompt=p, annotator=annotator) for p in prompts
        ]
        ranks = np.array(checked, dtype=np.int64).reshape(len(prompts), len(models))
        cats = tuple(categories.get(p) for p in prompts) if categories is not None else None
        return cls(annotator, tuple(models), prompts, ranks, cats)


def align(
    a: AnnotatorRankings, b: AnnotatorRankings
) -> tuple[tuple[str, ...], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The prompts both annotators ranked (in a's order) and their two rank arrays."""
    if a.models != b.models:
        raise InvalidInput(f"annotators {a.annotator!r} and {b.annotator!r} rank different models")
    index_b = {p: i for i, p in enumerate(b.prompts)}
    shared = [(i, index_b[p]) for i, p in enumerate(a.prompts) if p in index_b]
    prompts = tuple(a.prompts[i] for i, _ in shared)
    ia = np.array([i for i, _ in shared], dtype=np.int64)
    ib = np.array([j for _, j in shared], dtype=np.int64)
    return prompts, a.ranks[ia], b.ranks[ib]
