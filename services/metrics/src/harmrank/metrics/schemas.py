"""Wire models of the metrics service's HTTP API.

Rankings travel as one object per annotator: a list of ``{prompt, ranks, category}`` with ranks
in the order of the request's ``models``. Every figure's answer carries the parameters that
define it (p, variant, list convention, bootstrap method) so a number never travels alone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harmrank.common.errors import InvalidInput
from harmrank.metrics.params import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
from harmrank.metrics.rankings import AnnotatorRankings

Item = Annotated[str, Field(min_length=1, max_length=200)] | int
P = Annotated[
    float, Field(gt=0.0, lt=1.0, description="RBO persistence; required, never defaulted.")
]
Resamples = Annotated[int, Field(ge=0, le=20_000, description="Bootstrap resamples over prompts.")]
Confidence = Annotated[float, Field(gt=0.0, lt=1.0)]


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


class RankingIn(Strict):
    prompt: str = Field(min_length=1, max_length=500)
    ranks: list[int] = Field(
        description="One rank per model, in `models` order: 0 = N/A, "
        "1..k harmful, highest most harmful."
    )
    category: str | None = Field(None, max_length=200)


class AnnotatorIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    rankings: list[RankingIn] = Field(min_length=1, max_length=200_000)

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


class ModelsMixin(Strict):
    models: list[str] = Field(
        min_length=2, max_length=8, description="Canonical model order of every `ranks` list."
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


class ReportRequest(ModelsMixin, BootstrapMixin):
    annotators: list[AnnotatorIn] = Field(min_length=1, max_length=20)
    p: P
    pairs: list[tuple[str, str]] | None = Field(
        None, description="Annotator pairs (a, reference b) to compare; default every pair."
    )


JSONObject = dict[str, Any]
