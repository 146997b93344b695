"""Agreement statistics of summed contributions, and the parameters each figure states."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from harmrank.metrics.alpha import alpha_from_coincidence
from harmrank.metrics.bootstrap import Contributions
from harmrank.metrics.contributions import ratio
from harmrank.metrics.params import RBOSettings
from harmrank.metrics.rankings import ListConvention
from harmrank.metrics.rbo import EMPTY_CONVENTION
from harmrank.metrics.rbo_known import DEFINITION as RBO_KNOWN_DEFINITION

FloatArray = npt.NDArray[np.float64]
Metric = Literal[
    "rbo_known",
    "rbo",
    "exact_match",
    "kendall_tau_b",
    "krippendorff_alpha",
    "f1_harmful",
    "accuracy_harmful",
    "precision_harmful",
    "recall_harmful",
]
PREFIX_CAVEAT = (
    "the paper's convention: RBO_ext on harmful-only lists scores 1.0 when one list is the "
    "start of the other (['a'] against ['a', 'b', 'c']), although the annotators disagree "
    "about the missing responses; the headline is rbo_known"
)
TAU_RULE = "undefined when either ranking is constant (e.g. all N/A): prompt excluded"


def _mean_of(block: str) -> Callable[[Contributions], FloatArray]:
    return lambda c: ratio(c.column(block, 0), c.column(block, 1))


def _confusionratio(num: list[int], den: list[int]) -> Callable[[Contributions], FloatArray]:
    """Sum of confusion cells ``num`` over the sum of cells ``den`` (cells: tp, fp, fn, tn)."""

    def of_cells(c: Contributions) -> FloatArray:
        cells = c["confusion"]
        return ratio(cells[:, num].sum(axis=1), cells[:, den].sum(axis=1))

    return of_cells


def _f1(c: Contributions) -> FloatArray:
    tp, fp, fn = (c.column("confusion", j) for j in range(3))
    return ratio(2.0 * tp, 2.0 * tp + fp + fn)


@dataclass(frozen=True)
class _Stat:
    metric: Metric
    lists: ListConvention | None
    value: Callable[[Contributions], FloatArray]
    count_block: str  # column 1 of this block counts the prompts the figure is computed over


STATS = (
    _Stat("rbo_known", "harmful", _mean_of("rbo_known"), "rbo_known"),
    _Stat("rbo", "harmful", _mean_of("rbo_harmful"), "rbo_harmful"),
    _Stat("rbo", "tied", _mean_of("rbo_tied"), "rbo_tied"),
    _Stat("exact_match", None, _mean_of("exact"), "exact"),
    _Stat("kendall_tau_b", None, _mean_of("tau"), "tau"),
    _Stat("krippendorff_alpha", None, lambda c: alpha_from_coincidence(c["coincidence"]), "exact"),
    _Stat("accuracy_harmful", None, _confusionratio([0, 3], [0, 1, 2, 3]), "exact"),
    _Stat("precision_harmful", None, _confusionratio([0], [0, 1]), "exact"),
    _Stat("recall_harmful", None, _confusionratio([0], [0, 2]), "exact"),
    _Stat("f1_harmful", None, _f1, "exact"),
)


def statistics(contrib: Contributions) -> FloatArray:
    """Every figure (columns, in ``STATS`` order) for each row of summed contributions."""
    out: FloatArray = np.column_stack([stat.value(contrib) for stat in STATS])
    return out


# ------------------------------------------------------------------------ figure parameters


def _prompts_without(total: Contributions, block: str) -> int:
    return int(total.column("exact", 1)[0] - total.column(block, 1)[0])


def _rbo_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    params: dict[str, object] = {"p": s.p, "variant": s.variant, "ties": s.ties}
    params |= {"lists": stat.lists, "empty_convention": EMPTY_CONVENTION}
    params["n_undefined"] = _prompts_without(total, stat.count_block)
    if stat.lists == "harmful":
        params |= _empty(total)
        params["caveat"] = PREFIX_CAVEAT
    return params


def _empty(total: Contributions) -> dict[str, object]:
    """Empty lists score by convention: say how many there were."""
    both, one = (int(total.column("empty", j)[0]) for j in (0, 1))
    return {"n_both_empty": both, "n_one_empty": one}


def _tau_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    undefined = _prompts_without(total, "tau")
    return {"variant": "b", "n_undefined": undefined, "undefined_rule": TAU_RULE}


def _alpha_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    units = int(total["coincidence"].sum() / 2)  # each unit adds two pairable values
    return {
        "level": "ordinal",
        "distance": "Krippendorff 2011",
        "units": "(prompt, model)",
        "n_units": units,
        "coders": 2,
        "values": "rank 0..k",
    }


def _exact_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    return {"definition": "identical ranking (every model's rank equal)"}


def _harmful_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    tp, fp, fn, tn = (int(x) for x in total["confusion"][0])
    return {
        "positive": "harmful (rank > 0)",
        "reference": "b",
        "averaging": "micro over cells",
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def _rbo_known_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    return {"p": s.p, "variant": "known depth", "lists": "harmful, complete", **_empty(total)} | {
        "definition": RBO_KNOWN_DEFINITION
    }


PARAMS: dict[str, Callable[[_Stat, Contributions, RBOSettings], dict[str, object]]] = {
    "rbo_known": _rbo_known_params,
    "rbo": _rbo_params,
    "kendall_tau_b": _tau_params,
    "krippendorff_alpha": _alpha_params,
    "exact_match": _exact_params,
}


def stat_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    return PARAMS.get(stat.metric, _harmful_params)(stat, total, s)
