"""The wire models of the runs API: what a run asks for, and how a run and its tasks look."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, model_validator

from harmrank.common.contracts.generation import GenerationParams
from harmrank.common.contracts.names import JudgeName, ModelName
from harmrank.gateway.db.run_models import Stage, TaskState
from harmrank.gateway.edge import storable
from harmrank.gateway.pagination import Page
from harmrank.gateway.runs.failures import FailureGroup
from harmrank.metrics.aggregate_humans import NaRule

RunStatus = Literal["queued", "running", "done", "done_with_failures", "failed", "cancelled"]
DatasetName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$", description="A dataset's name.")
]
Category = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(storable)]
MAX_CATEGORIES = 1000
MAX_JUDGE_SETTINGS = 50


class PromptSet(BaseModel):
    """Which prompts: a dataset, optionally only some categories, optionally a seeded sample."""

    model_config = ConfigDict(extra="forbid")

    dataset: DatasetName
    categories: list[Category] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CATEGORIES,
        description="Only prompts in these categories.",
    )
    sample_size: int | None = Field(
        default=None, ge=1, le=10_000_000, description="None: every prompt."
    )
    seed: int = Field(
        default=0, ge=0, le=2**63 - 1, description="Seed of the sample; same seed, same prompts."
    )


class ModelSpec(BaseModel):
    """A small model and how to get its responses."""

    model_config = ConfigDict(extra="forbid")

    name: ModelName
    params: GenerationParams = Field(default_factory=GenerationParams)
    source: Literal["generate", "imported"] = Field(
        default="generate",
        description="'imported': use the responses imported with the dataset (the study's), "
        "generate nothing; their human rankings then join the report.",
    )


class JudgeSpec(BaseModel):
    """A judge of the judge service and how many presentation orders to ask it for."""

    model_config = ConfigDict(extra="forbid")

    name: JudgeName
    orders: int = Field(default=1, ge=1, le=24, description="Seeded presentation orders.")
    settings: dict[str, JsonValue] = Field(
        default_factory=dict,
        max_length=MAX_JUDGE_SETTINGS,
        description="Part of the result key: change it (say, a template version) when the "
        "judge's configuration in the judge service changed, so old rankings are not reused.",
    )


class HumanReferenceSettings(BaseModel):
    """How the humans who ranked the dataset's imported responses are aggregated into the
    run report's human reference, ``humans (aggregate)``."""

    model_config = ConfigDict(extra="forbid")

    na_rule: NaRule = Field(
        default="majority",
        description="`majority`: a model is harmful on an item when strictly more than half of "
        "the item's humans ranked it harmful; `unanimous`: N/A only when all of them said N/A.",
    )
    min_annotators: int = Field(
        default=1, ge=1, le=1000, description="Items with fewer humans are left out of it."
    )


class MetricSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p: float = Field(default=0.9, gt=0, lt=1, description="RBO persistence.")
    resamples: int = Field(
        default=1000,
        ge=0,
        le=20_000,
        description="Bootstrap resamples; at most what the metrics service computes.",
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    cluster_by: Literal["category"] | None = Field(
        None,
        description="Resample whole prompt categories for the intervals (the prompt-level "
        "interval stays beside each); omitted: resample prompts.",
    )
    human_reference: HumanReferenceSettings = Field(default_factory=HumanReferenceSettings)


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: PromptSet
    models: list[ModelSpec] = Field(min_length=2, max_length=26)
    judges: list[JudgeSpec] = Field(min_length=1, max_length=20)
    metrics: MetricSettings = Field(default_factory=MetricSettings)
    max_attempts: int = Field(default=5, ge=1, le=20, description="Per task, transient errors.")

    @model_validator(mode="after")
    def _unique_names(self) -> RunCreate:
        for what, names in (("models", self.models), ("judges", self.judges)):
            listed = [n.name for n in names]
            if len(set(listed)) != len(listed):
                raise ValueError(f"{what} must have unique names")
        return self


StageProgress = dict[TaskState, int]


class RunOut(BaseModel):
    id: int
    status: RunStatus
    created_at: datetime
    cancelled_at: datetime | None
    prompts: int = Field(description="Size of the run's prompt set.")
    progress: dict[Stage, StageProgress] = Field(description="Task counts per stage and state.")
    has_report: bool
    spec: RunCreate
    failures: list[FailureGroup] | None = Field(
        default=None,
        description="Per stage and model or judge: tasks failed and retrying, first and last "
        "error. Shown by GET /v1/runs/{id}; None in listings.",
    )
    stalled: str | None = Field(
        default=None, description="Why the run makes no progress now, when it makes none."
    )
    missing_rankings: dict[str, int] | None = Field(
        default=None,
        description="Per judge, the run's prompts it ranked none of, as the run's report states "
        "(judges that ranked every prompt left out; their figures cover fewer prompts). Shown by "
        "GET /v1/runs/{id} once the run has a report; None before and in listings.",
    )


class RunPage(Page[RunOut]):
    """Runs, newest first."""


class TaskOut(BaseModel):
    id: int
    stage: Stage
    state: TaskState
    prompt: str | None = Field(description="The prompt's external id in its dataset.")
    model: str | None
    generation_key: str | None
    judge: str | None
    order_index: int | None
    presentation_key: str | None
    attempts: int
    max_attempts: int
    not_before: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    error_type: str | None
    error_message: str | None
    result: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TaskPage(Page[TaskOut]):
    """A run's tasks in planning order."""
