"""The parameters of every agreement figure, in one settings object with one set of defaults.

``AgreementSettings`` is what ``agreement``, ``versus_reference``, the report and the services
take; the defaults are the study's choices (p = 0.9 is always given explicitly, never assumed),
so reproduced figures stay comparable with the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

from harmrank.metrics.bootstrap import BootstrapSpec
from harmrank.metrics.rbo import Ties, Variant

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class RBOSettings:
    p: float
    variant: Variant = "ext"
    ties: Ties = "w"


@dataclass(frozen=True)
class AgreementSettings:
    p: float
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    confidence: float = DEFAULT_CONFIDENCE
    rbo_variant: Variant = "ext"
    rbo_ties: Ties = "w"
    cluster_key: str | None = None
    """What the clusters of a clustered bootstrap are (e.g. "human annotation group"); the
    prompt-to-cluster mapping is data and travels with the rankings' caller."""

    @property
    def rbo(self) -> RBOSettings:
        return RBOSettings(self.p, self.rbo_variant, self.rbo_ties)

    @property
    def bootstrap(self) -> BootstrapSpec:
        return BootstrapSpec(self.resamples, self.seed, self.confidence)

    def stated(self) -> dict[str, object]:
        return {
            "p": self.p,
            "resamples": self.resamples,
            "seed": self.seed,
            "confidence": self.confidence,
            "rbo_variant": self.rbo_variant,
            "rbo_ties": self.rbo_ties,
            "cluster_key": self.cluster_key,
        }
