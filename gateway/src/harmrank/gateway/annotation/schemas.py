"""The wire models of the annotation page's API and of its admin endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from harmrank.gateway.annotation.sampling import Policy
from harmrank.gateway.edge import storable

Storable = AfterValidator(storable)
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Storable
]
Note = Annotated[str, StringConstraints(max_length=2000), Storable]
Token = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Storable
]

# --- admin ----------------------------------------------------------------------------------


class SettingsIn(BaseModel):
    k: int = Field(ge=1, le=100, description="Annotators per item.")
    content_warning: Annotated[str, Storable] | None = Field(
        default=None, max_length=5000, description="Shown once before the first item; a default."
    )
    budget: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Items to send to humans, in expectation; null: every item.",
    )
    policy: Policy = Field(
        default="uniform",
        description="How the budget's items are drawn: `uniform` random, or `active` (more "
        "probability where the judges disagree or are unsure; needs a budget).",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seeds the draws.")
    floor: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Active policy: every item keeps at least this share of the uniform "
        "probability budget / items (1: uniform).",
    )

    @model_validator(mode="after")
    def active_needs_budget(self) -> SettingsIn:
        if self.policy == "active" and self.budget is None:
            raise ValueError("policy 'active' needs a budget: without one every item is labelled")
        return self


class SettingsOut(BaseModel):
    dataset: str
    k: int
    content_warning: str
    budget: int | None
    policy: Policy
    seed: int
    floor: float
    drawn: int | None = Field(description="Items drawn for humans so far; null: no budget.")
    expected: float | None = Field(
        description="The sum of the items' probabilities: the expected number drawn."
    )
    items: int = Field(description="Prompts with a response of every model: what gets ranked.")
    annotators: int = Field(description="Invitations not revoked.")
    models: list[str]


class InvitationCreate(BaseModel):
    count: int = Field(default=1, ge=1, le=500)
    label: Annotated[str, Storable] | None = Field(
        default=None, max_length=200, description="Whom it is for."
    )


class InvitationToken(BaseModel):
    id: int
    label: str | None
    token: str = Field(description="Shown this once; only its SHA-256 is stored.")


class InvitationsCreated(BaseModel):
    dataset: str
    page: str = Field(description="Where annotators sign in with their name and token.")
    invitations: list[InvitationToken]


class InvitationOut(BaseModel):
    id: int
    label: str | None
    annotator: str | None
    created_at: datetime
    signed_in_at: datetime | None
    revoked_at: datetime | None


class AnnotatorProgress(BaseModel):
    invitation_id: int
    label: str | None
    annotator: str | None
    revoked: bool
    warning_accepted: bool
    assigned: int = Field(description="Items given to this annotator, skipped ones excluded.")
    done: int
    pending: int
    skipped: int
    flagged: int
    median_seconds: float | None


class ItemProgress(BaseModel):
    prompt_id: str
    annotators: int = Field(description="Annotators given the item (skips excluded).")
    done: int
    skipped: int
    flagged: int
    complete: bool = Field(description="done >= the effective k (k, or fewer annotators).")


class Progress(BaseModel):
    dataset: str
    k: int
    effective_k: int
    items: int
    items_complete: int
    rankings: int
    annotators: list[AnnotatorProgress]
    per_item: list[ItemProgress]


# --- the page -------------------------------------------------------------------------------


class SignIn(BaseModel):
    name: Name
    token: Token


class PageProgress(BaseModel):
    done: int
    total: int
    skipped: int


class PageState(BaseModel):
    annotator: str
    dataset: str
    warning_accepted: bool
    content_warning: str
    progress: PageProgress


class ShownResponse(BaseModel):
    label: str
    text: str


class PageItem(BaseModel):
    finished: bool
    progress: PageProgress
    prompt_id: str | None = None
    prompt: str | None = None
    responses: list[ShownResponse] = Field(default_factory=list)


class Submission(BaseModel):
    ranks: dict[str, int] = Field(
        description="Rank per label: 0 = not harmful, harmful ones 1..j, highest most harmful."
    )
    seconds: float = Field(
        ge=0, le=7 * 24 * 3600, allow_inf_nan=False, description="Time spent on the item."
    )
    flagged: bool = False
    note: Note = ""


class Skip(BaseModel):
    seconds: float = Field(default=0, ge=0, le=7 * 24 * 3600, allow_inf_nan=False)
    note: Note = ""


class Agreement(BaseModel):
    dataset: str
    models: list[str]
    parameters: dict[str, Any]
    humans: list[str]
    judges: list[str]
    items: dict[str, Any]
    krippendorff_alpha: dict[str, Any]
    pairwise_exact_pooled: dict[str, Any]
    pairwise: list[dict[str, Any]]
    aggregate: dict[str, Any]
    judges_vs_humans: list[dict[str, Any]]
