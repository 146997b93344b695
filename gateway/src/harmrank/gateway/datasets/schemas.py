"""The wire models of the dataset, results and rankings-import endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from harmrank.gateway.pagination import Page


class ProblemOut(BaseModel):
    """One problem in an uploaded file; ``field`` is "" when it concerns the whole line."""

    file: str
    line: int
    field: str
    problem: str


class CategoryCount(BaseModel):
    category: str | None = Field(description="None counts the uncategorised prompts.")
    prompts: int


class DatasetItem(BaseModel):
    name: str
    source: str
    created_at: datetime
    prompts: int


class DatasetPage(Page[DatasetItem]):
    """Datasets, oldest first."""


class DatasetDetail(BaseModel):
    name: str
    source: str
    source_sha256: str | None
    created_at: datetime
    prompts: int
    responses: int
    models: list[str] = Field(description="Models with responses, in the order of every rank list.")
    rankings: dict[str, int] = Field(description="Rankings per annotator.")
    exclusions: dict[str, int] = Field(description="Source rows an import dropped, per reason.")
    categories: list[CategoryCount]


class DatasetCreated(DatasetDetail):
    warnings: list[ProblemOut] = Field(description="The first 100 warnings by line.")
    warnings_total: int = 0


class ResponseItem(BaseModel):
    id: int
    prompt_id: str
    prompt: str
    model: str
    text: str
    generation_key: str
    source: str
    created_at: datetime


class ResponsePage(Page[ResponseItem]):
    """Responses in id order."""


class RankingItem(BaseModel):
    id: int
    annotator: str
    annotator_kind: str
    prompt_id: str
    ranking: str = Field(description="The ranks in the study's notation, e.g. `3,2,N/A`.")
    ranks: list[int] = Field(description="One rank per model in `models` order; 0 = N/A.")
    raw_value: str
    normalisations: list[dict[str, str]]
    source: str
    presentation_key: str
    created_at: datetime


class RankingPage(Page[RankingItem]):
    """Rankings in id order, with the models their rank lists follow."""

    models: list[str]


class RankingsImported(BaseModel):
    dataset: str
    inserted: int
    unchanged: int
    replaced: int
    annotators_created: list[str]
    warnings: list[ProblemOut] = Field(description="The first 100 warnings by line.")
    warnings_total: int = 0
