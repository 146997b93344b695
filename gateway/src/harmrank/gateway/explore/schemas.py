"""The explorer API's wire models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from harmrank.gateway.pagination import Page


class ColumnOut(BaseModel):
    name: str = Field(description="`annotator`, or `annotator #n` for a judge's n-th order.")
    annotator: str
    kind: str


class ListedPrompt(BaseModel):
    prompt_id: str
    category: str | None
    prompt: str = Field(description="The prompt, cut to `PREVIEW_CHARS` characters.")
    truncated: bool
    disagreement: float = Field(description="Share of column pairs not ranking it identically.")
    ranks: dict[str, list[int]]


class ExplorePage(Page[ListedPrompt]):
    """A page of the filtered prompts (the gateway's one page shape), with what the page's
    form and counts need."""

    scope: str
    models: list[str]
    columns: list[ColumnOut]
    categories: list[str]
    total: int = Field(description="Prompts in the scope.")
    matched: int = Field(description="Prompts the filter keeps.")
    filter: dict[str, Any] = Field(description="The filter applied, every parameter stated.")


class ShownResponse(BaseModel):
    model: str
    display_name: str
    text: str
    generation_key: str
    source: str
    generation: dict[str, Any] | None = Field(
        description="What the generator reported: settings, server info, tokens; None for "
        "imported responses."
    )


class ShownRanking(BaseModel):
    column: str
    annotator: str
    kind: str
    ranks: list[int]
    raw_value: str = Field(description="The annotator's answer as given (a judge's raw text).")
    normalisations: list[Any] = Field(
        description="What an importer changed to read the ranks, as it recorded it."
    )
    repaired: bool
    source: str
    presentation: dict[str, Any] | None
    disagrees_on: list[str] = Field(description="Models where it differs from the majority.")


class MissingJudgment(BaseModel):
    judge: str
    order: int | None
    state: str
    error_type: str | None
    message: str | None


class ExploreItem(BaseModel):
    prompt_id: str
    category: str | None
    prompt: str
    models: list[str]
    responses: list[ShownResponse]
    rankings: list[ShownRanking]
    missing: list[MissingJudgment] = Field(
        description="A run's judge tasks of this prompt that made no ranking, and why."
    )
