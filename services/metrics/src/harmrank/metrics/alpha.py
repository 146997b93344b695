"""Krippendorff's alpha, ordinal metric, for two coders, computed from a coincidence matrix.

Variant: alpha with the *ordinal* difference function of Krippendorff (2011), "Computing
Krippendorff's Alpha-Reliability", section E:

    delta_ck^2 = (sum_{g=c}^{k} n_g - (n_c + n_k) / 2)^2

where ``n_g`` are the coincidence matrix's marginals (pairable values per value). With two coders
every (prompt, model) unit holds two pairable values, so each unit adds ``1/(m_u - 1) = 1`` to
``o[a, b]`` and to ``o[b, a]``. Then ``alpha = 1 - (n.. - 1) * sum o_ck delta_ck / sum n_c n_k
delta_ck``.

The coincidence matrix is a sum over units, so a prompt's contribution is additive: this is what
lets a bootstrap resample be a weight vector over prompts (see ``bootstrap.py``). Values are the
ranks themselves (0 = N/A, 1..k), so the value domain of ``m`` models is ``0..m``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def n_values(n_models: int) -> int:
    """Size of the value domain: ranks 0..n_models."""
    return n_models + 1


def coincidence_contributions(a: IntArray, b: IntArray) -> FloatArray:
    """Per-prompt coincidence matrices, flattened: shape ``(n_prompts, V * V)``.

    ``a`` and ``b`` are ``(n_prompts, n_models)`` rank arrays of the two coders.
    """
    n, m = a.shape
    v = n_values(m)
    out = np.zeros((n, v * v), dtype=np.float64)
    rows = np.arange(n)
    # One model per statement: each (row, cell) occurs once, so plain fancy-index adds are safe.
    for j in range(m):
        out[rows, a[:, j] * v + b[:, j]] += 1.0
        out[rows, b[:, j] * v + a[:, j]] += 1.0
    return out


def ordinal_delta(marginals: FloatArray) -> FloatArray:
    """Squared ordinal differences ``(..., V, V)`` from value marginals ``(..., V)``."""
    cum = np.cumsum(marginals, axis=-1)
    v = marginals.shape[-1]
    lo = np.minimum.outer(np.arange(v), np.arange(v))
    hi = np.maximum.outer(np.arange(v), np.arange(v))
    # sum_{g=lo}^{hi} n_g, via cumulative sums so it vectorises over resamples
    between = cum[..., hi] - cum[..., lo] + marginals[..., lo]
    half = (marginals[..., :, None] + marginals[..., None, :]) / 2.0
    delta: FloatArray = (between - half) ** 2
    return delta


def alpha_from_coincidence(flat: FloatArray) -> FloatArray:
    """Ordinal alpha for each row of flattened coincidence matrices ``(R, V * V)`` -> ``(R,)``.

    NaN where alpha is undefined: no variation at all (expected disagreement 0) or fewer than two
    pairable values.
    """
    v = math.isqrt(flat.shape[-1])
    o = flat.reshape(*flat.shape[:-1], v, v)
    marg = o.sum(axis=-1)
    total = marg.sum(axis=-1)
    delta = ordinal_delta(marg)
    observed = (o * delta).sum(axis=(-2, -1))
    expected = (marg[..., :, None] * marg[..., None, :] * delta).sum(axis=(-2, -1))
    defined = (expected > 0) & (total > 1)
    safe = np.where(defined, expected, 1.0)
    alpha: FloatArray = np.where(defined, 1.0 - (total - 1.0) * observed / safe, np.nan)
    return alpha


def ordinal_alpha(a: IntArray, b: IntArray) -> float:
    """Ordinal alpha of two coders over every (prompt, model) unit of two rank arrays."""
    totals = coincidence_contributions(a, b).sum(axis=0, keepdims=True)
    return float(alpha_from_coincidence(totals)[0])
