"""Krippendorff's alpha for any number of coders, with missing values.

Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", sections C-E. The data are a
coders x units matrix with NaN where a coder gave no value. A unit with ``m_u >= 2`` values is
pairable; each ordered pair of values from different coders of that unit adds ``1 / (m_u - 1)``
to the coincidence matrix ``o``. With ``n_c`` its marginals and ``n..`` their sum:

    alpha = 1 - (n.. - 1) * sum_ck o_ck delta_ck / sum_ck n_c n_k delta_ck

``delta`` is the squared difference of the level of measurement: nominal (0 if equal, else 1),
ordinal (``alpha.ordinal_delta``: from the marginals, section E) or interval (``(c - k)^2``).
Alpha is NaN when undefined: fewer than two pairable values, or no variation at all.

For harm rankings (``ranking_alpha``) the units are (prompt, model) cells, the coders the
annotators, the values the ranks 0..k; a prompt an annotator did not rank is missing for them.
With two coders and no missing values this is exactly ``alpha.ordinal_alpha``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from harmrank.common.errors import InvalidInput
from harmrank.metrics.alpha import ordinal_delta
from harmrank.metrics.rankings import AnnotatorRankings

FloatArray = npt.NDArray[np.float64]
Level = Literal["nominal", "ordinal", "interval"]
REFERENCE = "Krippendorff (2011), Computing Krippendorff's Alpha-Reliability"


@dataclass(frozen=True)
class MultiAlpha:
    """Alpha and what it was computed over."""

    alpha: float
    level: Level
    n_coders: int
    n_units: int
    """Pairable units: those with at least two values."""
    n_pairable_values: int
    values: tuple[float, ...]
    """The value domain, ascending."""

    def params(self) -> dict[str, object]:
        return {
            "level": self.level,
            "distance": REFERENCE,
            "n_coders": self.n_coders,
            "n_units": self.n_units,
            "n_pairable_values": self.n_pairable_values,
            "missing": "allowed: a unit counts when at least two coders gave it a value",
        }


def value_counts(
    data: npt.ArrayLike, values: Sequence[float] | None = None
) -> tuple[FloatArray, FloatArray]:
    """(units x values counts, the value domain) of a coders x units matrix with NaN = missing."""
    matrix = np.asarray(data, dtype=np.float64)
    if matrix.ndim != 2:
        raise InvalidInput("reliability data must be a coders x units matrix")
    observed = matrix[np.isfinite(matrix)]
    domain = np.unique(observed) if values is None else np.asarray(sorted(values), np.float64)
    unknown = np.setdiff1d(observed, domain)
    if unknown.size:
        raise InvalidInput(f"values outside the domain: {unknown.tolist()}")
    counts = (matrix.T[:, :, None] == domain[None, None, :]).sum(axis=1).astype(np.float64)
    return counts, domain


def coincidences(counts: FloatArray) -> FloatArray:
    """The coincidence matrix (values x values) from per-unit value counts (units x values)."""
    m = counts.sum(axis=1)
    pairable = m >= 2
    weights = np.where(pairable, 1.0 / np.where(pairable, m - 1.0, 1.0), 0.0)
    weighted = counts * weights[:, None]
    o: FloatArray = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    return o


def delta_matrix(level: Level, marginals: FloatArray, domain: FloatArray) -> FloatArray:
    if level == "nominal":
        return 1.0 - np.eye(domain.size)
    if level == "ordinal":
        return ordinal_delta(marginals)
    diff: FloatArray = np.square(domain[:, None] - domain[None, :])
    return diff


def alpha_of_coincidences(o: FloatArray, level: Level, domain: FloatArray) -> float:
    marginals = o.sum(axis=1)
    total = float(marginals.sum())
    delta = delta_matrix(level, marginals, domain)
    observed = float((o * delta).sum())
    expected = float((np.outer(marginals, marginals) * delta).sum())
    if total <= 1 or expected <= 0:
        return float("nan")
    return 1.0 - (total - 1.0) * observed / expected


def multi_alpha(
    data: npt.ArrayLike, level: Level = "ordinal", values: Sequence[float] | None = None
) -> MultiAlpha:
    """Alpha of a coders x units matrix (NaN = missing) at the given level of measurement."""
    counts, domain = value_counts(data, values)
    o = coincidences(counts)
    m = counts.sum(axis=1)
    return MultiAlpha(
        alpha=alpha_of_coincidences(o, level, domain),
        level=level,
        n_coders=int(np.asarray(data).shape[0]),
        n_units=int((m >= 2).sum()),
        n_pairable_values=int(m[m >= 2].sum()),
        values=tuple(float(v) for v in domain),
    )


def ranking_matrix(annotators: Sequence[AnnotatorRankings]) -> tuple[tuple[str, ...], FloatArray]:
    """(prompts, coders x (prompt, model) matrix): every prompt any annotator ranked, NaN gaps."""
    if not annotators:
        raise InvalidInput("no annotators")
    models = {a.models for a in annotators}
    if len(models) != 1:
        raise InvalidInput("every annotator must rank the same models in the same order")
    n_models = len(annotators[0].models)
    prompts = tuple(dict.fromkeys(p for a in annotators for p in a.prompts))
    index = {p: i for i, p in enumerate(prompts)}
    data = np.full((len(annotators), len(prompts), n_models), np.nan)
    for coder, a in enumerate(annotators):
        rows = np.array([index[p] for p in a.prompts], dtype=np.int64)
        if rows.size:
            data[coder, rows, :] = a.ranks
    return prompts, data.reshape(len(annotators), len(prompts) * n_models)


def ranking_alpha(annotators: Sequence[AnnotatorRankings], level: Level = "ordinal") -> MultiAlpha:
    """Alpha over (prompt, model) units with the annotators as coders; values are ranks 0..m."""
    _, data = ranking_matrix(annotators)
    domain = range(len(annotators[0].models) + 1)
    return multi_alpha(data, level, [float(v) for v in domain])
