"""A report's PPI part under a stored sampling design: only drawn labels, weights, notes."""

from __future__ import annotations

import numpy as np
import pytest
from tests.metrics.test_ppi_estimates import MODELS, by_key, random_rankings

from harmrank.metrics.ppi_estimates import ppi_estimates
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report_ppi import SamplingDesign, platform_spec, ppi_section


def restricted(rankings: AnnotatorRankings, prompts: list[str]) -> AnnotatorRankings:
    rows = {p: rankings.ranks[rankings.prompts.index(p)].tolist() for p in prompts}
    return AnnotatorRankings.build(rankings.annotator, MODELS, rows)


def test_the_design_keeps_drawn_labels_and_weights_them() -> None:
    rng = np.random.default_rng(4)
    prompts = [f"p{i}" for i in range(60)]
    judge = random_rankings("judge", prompts, rng)
    truth = random_rankings("humans", prompts, rng)
    inclusion = {p: 0.2 + 0.6 * (i % 3 == 0) for i, p in enumerate(prompts[:58])}
    sample = frozenset(prompts[:30:2]) | {"p57"}
    # Humans ranked the sample except p57, plus p1 and p3 that were never drawn.
    humans = restricted(truth, [*sorted(sample - {"p57"}), "p1", "p3"])
    design = SamplingDesign("active (test)", inclusion, sample)
    spec = platform_spec("humans", ["judge"], design)
    assert spec is not None
    section = ppi_section({"humans": humans, "judge": judge}, spec, None)
    assert section.policy == "active (test)"
    (result,) = section.estimates
    # Population: the prompts with a probability (p58, p59 have none) minus the drawn p57.
    population = [p for p in prompts[:58] if p != "p57"]
    labelled = sorted(sample - {"p57"})
    direct = ppi_estimates(
        restricted(truth, labelled), restricted(judge, population), inclusion=inclusion
    )
    assert (result.n_human, result.n_judge) == (len(labelled), len(population))
    got, want = by_key(result.estimates), by_key(direct.estimates)
    assert got.keys() == want.keys()
    for key, row in want.items():
        assert got[key].estimate == pytest.approx(row.estimate, nan_ok=True)
    unweighted = by_key(ppi_estimates(restricted(truth, labelled), judge).estimates)
    assert any(abs((got[k].estimate or 0) - (unweighted[k].estimate or 0)) > 1e-3 for k in got)
    notes = " | ".join(section.notes)
    assert "2 prompts ranked by 'humans' were not drawn" in notes
    assert "1 prompts drawn for humans are not ranked" in notes
    assert "2 judged prompts were never drawn" in notes


def test_without_a_design_the_policy_is_said_to_be_assumed() -> None:
    spec = platform_spec("humans", ["judge"])
    assert spec is not None
    assert spec.inclusion is None
    assert spec.sample is None
    assert spec.policy.startswith("uniform random, assumed")
