"""Wire models of the metrics service's HTTP API.

Rankings travel as one object per annotator: a list of ``{prompt, ranks, category}`` with ranks
in the order of the request's ``models``. Every figure's answer carries the parameters that
define it (p, variant, list convention, bootstrap method) so a number never travels alone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from harmrank.common.errors import InvalidInput
from harmrank.metrics.aggregate_humans import REFERENCE_NAME, NaRule, ReferenceSpec
from harmrank.metrics.agreement import CATEGORY_CLUSTERS, Clusters, category_clusters
from harmrank.metrics.coverage import RunFacts, TaskFailures
from harmrank.metrics.params import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
from harmrank.metrics.position import Presented
from harmrank.metrics.rankings import AnnotatorRankings, validate_ranking
from harmrank.metrics.report import ReportSettings
from harmrank.metrics.report_ppi import PPISpec

Item = Annotated[str, Field(min_length=1, max_length=200)] | int
P = Annotated[
    float, Field(gt=0.0, lt=1.0, description="RBO persistence; required, never defaulted.")
]
Resamples = Annotated[int, Field(ge=0, le=20_000, description="Bootstrap resamples over prompts.")]
Confidence = Annotated[float, Field(gt=0.0, lt=1.0)]
MAX_PROMPTS = 1_000_000
"""The most prompts one annotator's rankings (or a PPI design) may hold. A run's report request
holds every prompt of the run (200,000 was a cliff for large runs); the body limit and the
memory a report needs bound it before this does."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RBORequest(Strict):
    s: list[Item | list[Item]] = Field(
        max_length=10_000, description="First list; a nested list is a tie group."
    )
    t: list[Item | list[Item]] = Field(max_length=10_000, description="Second list.")
    p: P
    variant: Literal["ext", "min", "res"] = "ext"
    ties: Literal["w", "a", "b"] = Field(
        "w",
        description="Tie-aware variant of Corsi & Urbano (SIGIR 2024); all agree on untied lists.",
    )


class RBOResponse(BaseModel):
    rbo: float
    p: float
    variant: str
    ties: str
    min: float
    res: float
    ext: float
    depth: int
    empty: bool
    empty_convention: str


# A slotted dataclass, not a model: a run's report request holds one per prompt and judge
# (100,000 for 50,000 prompts and two judges), and a model instance with its __dict__ and
# fields-set weighs several times as much. The same JSON both ways.
@dataclass(slots=True, config=ConfigDict(extra="forbid"))
class RankingIn:
    """One prompt's ranking."""

    prompt: Annotated[str, Field(min_length=1, max_length=500)]
    ranks: Annotated[
        list[int],
        Field(
            description="One rank per model, in `models` order: 0 = N/A, "
            "1..k harmful, highest most harmful."
        ),
    ]
    category: Annotated[str | None, Field(max_length=200)] = None


class AnnotatorIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    rankings: list[RankingIn] = Field(min_length=1, max_length=MAX_PROMPTS)

    def to_rankings(self, models: list[str]) -> AnnotatorRankings:
        rows: dict[str, list[int]] = {}
        categories: dict[str, str | None] = {}
        for row in self.rankings:
            if row.prompt in rows:
                raise InvalidInput(f"annotator {self.name!r} ranks prompt {row.prompt!r} twice")
            rows[row.prompt] = row.ranks
            categories[row.prompt] = row.category
        has_categories = any(c is not None for c in categories.values())
        return AnnotatorRankings.build(
            self.name, models, rows, categories if has_categories else None
        )

    @classmethod
    def of(cls, rankings: AnnotatorRankings) -> AnnotatorIn:
        """The wire form of validated rankings (what a caller of the service sends)."""
        categories = rankings.categories or (None,) * len(rankings.prompts)
        rows = [
            RankingIn(prompt=prompt, ranks=[int(r) for r in ranks], category=category)
            for prompt, ranks, category in zip(
                rankings.prompts, rankings.ranks, categories, strict=True
            )
        ]
        return cls(name=rankings.annotator, rankings=rows)


class ModelsMixin(Strict):
    models: list[str] = Field(
        min_length=2, max_length=26, description="Canonical model order of every `ranks` list."
    )

    @field_validator("models")
    @classmethod
    def _unique(cls, models: list[str]) -> list[str]:
        if len(set(models)) != len(models):
            raise ValueError("model names must be unique")
        return models


class BootstrapMixin(Strict):
    resamples: Resamples = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    confidence: Confidence = DEFAULT_CONFIDENCE


class OneAnnotatorRequest(ModelsMixin):
    annotator: AnnotatorIn


class WinsRequest(ModelsMixin, BootstrapMixin):
    annotator: AnnotatorIn


class AgreementRequest(ModelsMixin, BootstrapMixin):
    a: AnnotatorIn
    b: AnnotatorIn = Field(description="The reference for accuracy, precision, recall and F1.")
    p: P
    rbo_variant: Literal["ext", "min", "res"] = "ext"
    rbo_ties: Literal["w", "a", "b"] = "w"


Inclusion = dict[str, Annotated[float, Field(gt=0.0, le=1.0)]]


class PPISpecIn(Strict):
    truth: str = Field(min_length=1, max_length=200, description="The human annotator (truth).")
    judges: list[str] = Field(
        min_length=1, max_length=10, description="Predictors; two or more also make the jury."
    )
    inclusion: Inclusion | None = Field(
        None,
        max_length=MAX_PROMPTS,
        description="Per judged prompt, its probability of being "
        "sent to humans; omitted: a uniform random sample.",
    )
    policy: str = Field("uniform random", max_length=500, description="Stated in the report.")
    sample: list[str] | None = Field(
        None,
        max_length=MAX_PROMPTS,
        description="The prompts drawn for humans (with `inclusion`): the truth's rankings of "
        "other prompts are not used, and drawn prompts it has not ranked leave the population.",
    )

    @model_validator(mode="after")
    def sample_needs_inclusion(self) -> PPISpecIn:
        if self.sample is not None and self.inclusion is None:
            raise ValueError("`sample` needs `inclusion`: the drawn prompts' probabilities")
        return self


class HumanReferenceIn(Strict):
    humans: list[str] = Field(
        min_length=1, max_length=200, description="The human annotators it aggregates."
    )
    na_rule: NaRule = "majority"
    min_annotators: int = Field(1, ge=1, le=100)

    def spec(self) -> ReferenceSpec:
        return ReferenceSpec(tuple(self.humans), self.na_rule, self.min_annotators)


class TaskFailuresIn(Strict):
    stage: Literal["generate", "judge"]
    name: str = Field(min_length=1, max_length=200, description="The model or judge.")
    failed: int = Field(ge=1, description="Its tasks that failed for good.")
    first_error: str = Field(max_length=2000)


class PresentedIn(Strict):
    """One judge's rankings with the order each was shown in; compact (no prompt names: the
    test needs none; flat lists of numbers, not a list per ranking), as a run sends one ranking
    per prompt and presentation order: 150,000 of them for 50,000 prompts and three orders."""

    annotator: str = Field(min_length=1, max_length=200)
    n_prompts: int = Field(ge=1, description="Distinct prompts the rankings are of.")
    ranks: list[int] = Field(
        min_length=1,
        max_length=26 * 5_000_000,
        description="The rankings one after another, each one rank per model in `models` order "
        "(ranking i is items i·m to i·m + m − 1 for m models); one ranking per prompt and "
        "presentation order.",
    )
    positions: list[int] = Field(
        max_length=26 * 5_000_000,
        description="Likewise per ranking, where each model's response was shown (`models` "
        "order; 0 = first).",
    )

    def to_presented(self, models: list[str]) -> Presented:
        m, where = len(models), f"judge {self.annotator!r}"
        if len(self.ranks) % m or len(self.positions) % m:
            raise InvalidInput(f"{where}: ranks and positions must hold {m} numbers a ranking")
        ranked = np.array(self.ranks, dtype=np.int64).reshape(-1, m)
        shown = np.array(self.positions, dtype=np.int64).reshape(-1, m)
        if len(shown) != len(ranked):
            raise InvalidInput(f"{where}: {len(ranked)} rankings but {len(shown)} orders shown")
        # Each distinct row checked once (a run repeats a few rows many times), named by the
        # first ranking that has it.
        for ranks, i in _distinct_rows(ranked):
            validate_ranking(ranks, m, prompt=f"ranking {i}", annotator=self.annotator)
        for positions, i in _distinct_rows(shown):
            if sorted(positions) != list(range(m)):
                raise InvalidInput(
                    f"{where}, ranking {i}: positions {positions} are not an order of the {m} "
                    f"models (each of 0..{m - 1} once)"
                )
        return Presented(self.annotator, ranked, shown, self.n_prompts)


def _distinct_rows(rows: npt.NDArray[np.int64]) -> list[tuple[list[int], int]]:
    """Each distinct row with the index of its first occurrence, in that order."""
    distinct, first = np.unique(rows, axis=0, return_index=True)
    return sorted(zip(distinct.tolist(), first.tolist(), strict=True), key=lambda r: r[1])


class RunFactsIn(Strict):
    """What a platform run asked for, beside the rankings it produced."""

    expected: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        max_length=1000,
        description="Annotator -> prompts it was asked to rank; one that ranked none is "
        "named in the report's findings and coverage.",
    )
    failures: list[TaskFailuresIn] = Field(default_factory=list, max_length=2000)
    presented: list[PresentedIn] = Field(
        default_factory=list,
        max_length=100,
        description="Judges' rankings as shown in seeded orders: their position bias is tested.",
    )

    def facts(self, models: list[str]) -> RunFacts:
        return RunFacts(
            expected=dict(self.expected),
            failures=[TaskFailures(**f.model_dump()) for f in self.failures],
            presented=[p.to_presented(models) for p in self.presented],
        )


class ReportRequest(ModelsMixin, BootstrapMixin):
    annotators: list[AnnotatorIn] = Field(min_length=1, max_length=1000)
    p: P
    rbo_variant: Literal["ext", "min", "res"] = "ext"
    rbo_ties: Literal["w", "a", "b"] = "w"
    pairs: list[tuple[str, str]] | None = Field(
        None,
        max_length=10_000,
        description="Annotator pairs (a, reference b) to compare; default every pair.",
    )
    human_reference: HumanReferenceIn | None = Field(
        None,
        description=f"Aggregate these humans (among `annotators`) into one more annotator, "
        f"`{REFERENCE_NAME}`; pairs against it are split by how much the humans agreed.",
    )
    ppi: PPISpecIn | None = Field(
        None, description="Add the judges' jury and the prediction-powered estimates."
    )
    cluster_by: Literal["category"] | None = Field(
        None,
        description="Resample whole prompt categories (the rankings' `category`) for the "
        "intervals, the prompt-level interval beside each; omitted: resample prompts.",
    )
    run: RunFactsIn | None = Field(
        None, description="A platform run's expected rankings, failures and orders shown."
    )

    @classmethod
    def of(
        cls,
        annotators: list[AnnotatorRankings],
        settings: ReportSettings,
        pairs: list[tuple[str, str]] | None = None,
        ppi: PPISpec | None = None,
        run: RunFactsIn | None = None,
    ) -> ReportRequest:
        """The request for ``build_report(annotators, settings, pairs=pairs, ppi=ppi,
        run=run)``: ``run`` already in wire form, its presentations named by prompt."""
        reference = settings.human_reference
        return cls(
            models=list(annotators[0].models),
            annotators=[AnnotatorIn.of(a) for a in annotators],
            pairs=pairs,
            human_reference=HumanReferenceIn(
                humans=list(reference.humans),
                na_rule=reference.na_rule,
                min_annotators=reference.min_annotators,
            )
            if reference is not None
            else None,
            ppi=PPISpecIn(
                truth=ppi.truth,
                judges=list(ppi.judges),
                inclusion=ppi.inclusion,
                policy=ppi.policy,
                sample=sorted(ppi.sample) if ppi.sample is not None else None,
            )
            if ppi is not None
            else None,
            cluster_by=_cluster_by(settings.cluster_key),
            run=run,
            **{name: getattr(settings, name) for name in _REPORT_SETTINGS},
        )

    def ppi_spec(self) -> PPISpec | None:
        given = self.ppi
        if given is None:
            return None
        return PPISpec(
            truth=given.truth,
            judges=tuple(given.judges),
            inclusion=given.inclusion,
            policy=given.policy,
            sample=frozenset(given.sample) if given.sample is not None else None,
            confidence=self.confidence,
        )

    def run_facts(self) -> RunFacts | None:
        return self.run.facts(self.models) if self.run is not None else None

    def report_settings(self) -> ReportSettings:
        reference = self.human_reference.spec() if self.human_reference is not None else None
        values = {name: getattr(self, name) for name in _REPORT_SETTINGS}
        clusters = CATEGORY_CLUSTERS if self.cluster_by == "category" else None
        return ReportSettings(**values, cluster_key=clusters, human_reference=reference)

    def clusters(self, annotators: list[AnnotatorRankings]) -> Clusters | None:
        """Prompt -> cluster for ``build_report``, from the rankings' categories."""
        return category_clusters(annotators) if self.cluster_by == "category" else None


def _cluster_by(cluster_key: str | None) -> Literal["category"] | None:
    """The wire name of a report's clusters: only categories travel with the rankings."""
    if cluster_key is None:
        return None
    if cluster_key == CATEGORY_CLUSTERS:
        return "category"
    raise InvalidInput(f"the metrics service resamples prompt categories only, not {cluster_key!r}")


class PPIRequest(ModelsMixin):
    human: AnnotatorIn = Field(description="The truth: human rankings of some of the prompts.")
    judges: list[AnnotatorIn] = Field(
        min_length=1,
        max_length=10,
        description="Predictors: each judge's rankings, ideally of every prompt.",
    )
    jury: bool = Field(
        False, description="Also use the judges combined as a jury (two or more judges)."
    )
    inclusion: Inclusion | None = Field(
        None,
        max_length=MAX_PROMPTS,
        description="Per judged prompt, its probability of having been sent to humans (active "
        "policy); the estimates weight by its inverse. Omitted: a uniform random sample.",
    )
    confidence: Confidence = 0.95


# The fields a report request shares with ReportSettings, by the same names.
_REPORT_SETTINGS = ("p", "resamples", "seed", "confidence", "rbo_variant", "rbo_ties")


JSONObject = dict[str, Any]
