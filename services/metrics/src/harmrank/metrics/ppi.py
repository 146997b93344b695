"""Prediction-powered estimates of a mean: human-only, judge-only and PPI++ with power tuning.

The setting: a truth ``y`` (a human's outcome) is known on ``n`` labelled items; a predictor
``yhat`` (a judge's outcome) is known on those and on ``N`` more, unlabelled items. Three
estimates of the mean of ``y`` over the population the items were drawn from:

- ``human_only``: the classical mean of ``y`` on the labelled items and its CLT interval;
- ``judge_only``: the mean of ``yhat`` on all ``n + N`` items: biased whenever the judge is,
  shown only so the bias can be seen;
- ``ppi``: PPI++ (Angelopoulos, Duchi & Zrnic 2023), ``lam * mean_u(yhat) + mean(y - lam * yhat)``
  with ``lam`` tuned to minimise the variance and clipped to [0, 1] (``lam = 0`` is the
  human-only estimate, ``lam = 1`` plain PPI, Angelopoulos et al., Science 2023).

Sampling weights ``w`` (labelled) and ``w_u`` (unlabelled) are normalised to mean 1 within each
set, exactly as ``ppi-python``'s ``ppi_mean_ci`` does (tests check agreement to 1e-6). Items
chosen for labelling with probability ``pi`` take ``w = 1 / pi`` and the items left take
``w_u = 1 / (1 - pi)``: each weighted set then stands for the whole population again (Zrnic &
Candès 2024), which keeps actively chosen labels valid.

Every estimate is a function of a few weighted means over the items (``Moments``), so it is
computed from those: from the items themselves (``moments``), or, in a simulation that draws
many subsets of one population, from sums over each subset that one matrix product gives
(``label_budget.py``). Leading axes (repetitions, estimands) are computed at once. Standard
deviations are population ones (``ddof = 0``) and the variance of the predictions in the
tuning step is the sample one (``ddof = 1``), as in ``ppi-python``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

FloatArray = npt.NDArray[np.float64]
Method = Literal["human_only", "judge_only", "ppi"]
METHODS: tuple[Method, ...] = ("human_only", "judge_only", "ppi")
METHOD_TEXT: dict[Method, str] = {
    "human_only": "mean of the human labels; CLT interval",
    "judge_only": "mean of the judge's labels on every item; BIASED when the judge is",
    "ppi": "PPI++ with power tuning (lambda clipped to [0, 1]); CLT interval",
}


@dataclass(frozen=True, eq=False)
class MeanEstimate:
    """Estimates and standard errors over the leading axes; ``lam`` is 0 / 1 outside PPI."""

    estimate: FloatArray
    se: FloatArray
    lam: FloatArray

    def interval(self, confidence: float) -> tuple[FloatArray, FloatArray]:
        z = float(norm.ppf((1 + confidence) / 2))
        return self.estimate - z * self.se, self.estimate + z * self.se


def normalised(w: FloatArray | None, like: FloatArray) -> FloatArray:
    """Weights scaled to mean 1 along the items axis (ones when none are given)."""
    if w is None or like.shape[-1] == 0:
        return np.ones_like(like)
    w = np.broadcast_to(np.asarray(w, dtype=np.float64), like.shape)
    return np.asarray(w / w.mean(axis=-1, keepdims=True))


@dataclass(frozen=True, eq=False)
class Moments:
    """Means over the ``n`` labelled and ``big_n`` unlabelled items of what PPI++ needs.

    ``w`` (labelled) and ``u`` (unlabelled) are the weights normalised to mean 1; ``y`` the
    truth, ``h`` the prediction: ``wy = mean(w * y)``, ``wwyh = mean(w**2 * y * h)``, and so on.
    """

    n: int
    big_n: int
    wy: FloatArray
    wh: FloatArray
    wwyy: FloatArray
    wwyh: FloatArray
    wwhh: FloatArray
    wwy: FloatArray
    wwh: FloatArray
    ww: FloatArray
    uh: FloatArray
    uuhh: FloatArray
    uuh: FloatArray
    uu: FloatArray


def _mean(x: FloatArray) -> FloatArray:
    return np.asarray(x.mean(axis=-1)) if x.shape[-1] else np.zeros(x.shape[:-1])


def moments(
    y: FloatArray,
    yhat: FloatArray,
    yhat_u: FloatArray,
    w: FloatArray | None = None,
    w_u: FloatArray | None = None,
) -> Moments:
    """The moments of labelled items (truth ``y``, prediction ``yhat``) and unlabelled ones."""
    w, u = normalised(w, y), normalised(w_u, yhat_u)
    ww, uu = w * w, u * u
    return Moments(
        n=y.shape[-1],
        big_n=yhat_u.shape[-1],
        wy=_mean(w * y),
        wh=_mean(w * yhat),
        wwyy=_mean(ww * y * y),
        wwyh=_mean(ww * y * yhat),
        wwhh=_mean(ww * yhat * yhat),
        wwy=_mean(ww * y),
        wwh=_mean(ww * yhat),
        ww=_mean(ww),
        uh=_mean(u * yhat_u),
        uuhh=_mean(uu * yhat_u * yhat_u),
        uuh=_mean(uu * yhat_u),
        uu=_mean(uu) if yhat_u.shape[-1] else np.ones(y.shape[:-1]),
    )


def tuned_lambda(m: Moments) -> FloatArray:
    """PPI++'s variance-minimising lam for a mean, clipped to [0, 1].

    ``lam = Cov(g, g_hat) / ((1 + n / N) Var(g_hat))`` on the weighted gradients at the plain PPI
    estimate ``theta`` (``g = w (y - theta)``, ``g_hat = w (yhat - theta)``, the variance over
    labelled and unlabelled items); 0 when the predictions do not vary (no information).
    """
    n, big_n = m.n, m.big_n
    theta = m.uh + m.wy - m.wh
    cross = m.wwyh - theta * (m.wwy + m.wwh) + theta**2 * m.ww
    cov = 2 * (cross - (m.wy - theta) * (m.wh - theta))
    squares = n * (m.wwhh - 2 * theta * m.wwh + theta**2 * m.ww)
    squares = squares + big_n * (m.uuhh - 2 * theta * m.uuh + theta**2 * m.uu)
    total = n * (m.wh - theta) + big_n * (m.uh - theta)
    var = (squares - total**2 / (n + big_n)) / (n + big_n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = cov / (2 * (1 + n / big_n) * var)
    return np.asarray(np.clip(np.where(var > 1e-12, lam, 0.0), 0.0, 1.0))


def from_moments(m: Moments, lam: float | None = None) -> MeanEstimate:
    """PPI++ from the moments (``lam=None``: power-tuned; 0: human-only; 1: plain PPI)."""
    shape = np.shape(m.wy)
    if m.big_n == 0 or lam is not None:
        lams = np.full(shape, 0.0 if lam is None else float(lam))
    else:
        lams = tuned_lambda(m)
    rectifier = m.wy - lams * m.wh
    var_rect = m.wwyy - 2 * lams * m.wwyh + lams**2 * m.wwhh - rectifier**2
    var_imp = lams**2 * (m.uuhh - m.uh**2) / m.big_n if m.big_n else np.zeros(shape)
    var = np.maximum(var_rect, 0.0) / m.n + np.maximum(var_imp, 0.0)
    se = np.sqrt(var) if m.n > 1 else np.full(shape, np.nan)
    return MeanEstimate(np.asarray(lams * m.uh + rectifier), np.asarray(se), lams)


def ppi_mean(
    y: FloatArray,
    yhat: FloatArray,
    yhat_u: FloatArray,
    *,
    w: FloatArray | None = None,
    w_u: FloatArray | None = None,
    lam: float | None = None,
) -> MeanEstimate:
    """PPI++ estimate of the mean of ``y`` from the items (``lam=None``: power-tuned)."""
    return from_moments(moments(y, yhat, yhat_u, w, w_u), lam)


def judge_only(yhat: FloatArray, yhat_u: FloatArray) -> MeanEstimate:
    """The judge's own mean over every item it labelled; biased whenever the judge is."""
    every = np.concatenate([yhat, yhat_u], axis=-1)
    n = every.shape[-1]
    se = every.std(axis=-1) / np.sqrt(n) if n > 1 else np.full(every.shape[:-1], np.nan)
    return MeanEstimate(every.mean(axis=-1), np.asarray(se), np.ones(every.shape[:-1]))


def estimate(
    method: Method,
    y: FloatArray,
    yhat: FloatArray,
    yhat_u: FloatArray,
    *,
    w: FloatArray | None = None,
    w_u: FloatArray | None = None,
) -> MeanEstimate:
    """One of the three methods by name, on the same data (human-only is PPI with lam = 0)."""
    if method == "judge_only":
        return judge_only(yhat, yhat_u)
    return ppi_mean(y, yhat, yhat_u, w=w, w_u=w_u, lam=0.0 if method == "human_only" else None)
