"""The generator service's wire models, shared with the gateway that calls it.

One prompt and one model go to ``POST /v1/generate`` (:class:`GenerateRequest` in,
:class:`GenerationResult` out). Many go to ``POST /v1/generate/batch`` (:class:`BatchRequest`
in), which answers NDJSON: one :data:`BatchLine` per line, in the order results finish, each
line self-describing (``type`` plus the prompt id, model and index it belongs to), and a final
``summary`` line so a reader can tell a complete stream from a cut one. Parse a line with
``BATCH_LINE.validate_json(line)``.

Error types a caller may switch on (``error_type`` of an error body or an error line):

- ``generation_validation`` (422): the model server refused the input (too long, bad
  parameters). Permanent: do not retry; record it.
- ``generation_failed`` (502): the model server failed while generating, even after a bounded
  number of retries.
- ``upstream_overloaded`` / ``upstream_unavailable`` (503): overloaded, unhealthy or
  unreachable after retries with backoff; retry later.
- ``upstream_timeout`` (504): no answer in time after retries.
- ``upstream_error`` (502): any other failure of the model server.
- ``not_found`` (404): the model is not in the registry; ``validation`` (422): a bad request.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from harmrank.common.contracts.judging import MAX_CALL_BUDGET

FinishReason = Literal["length", "eos_token", "stop_sequence", "stop", "unknown"]
"""TGI's ``/generate`` reasons; ``stop`` is the chat API's (end of sequence or a stop string,
which that API does not tell apart); ``unknown`` when the server gave none we know."""

Mode = Literal["generate", "chat"]
Backend = Literal["tgi", "openai", "transformers"]


class GenerationParams(BaseModel):
    """Sampling parameters. A field left out takes the model's configured default.

    ``temperature`` 0 means greedy decoding (TGI itself refuses 0, so it is sent as no sampling).
    """

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int | None = Field(default=None, ge=1, le=32_768)
    temperature: float | None = Field(default=None, ge=0, le=10)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    stop: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=4
    )
    repetition_penalty: float | None = Field(default=None, gt=0)

    def over(self, defaults: GenerationParams) -> GenerationParams:
        """These parameters, with every field left unset taken from ``defaults``."""
        merged = defaults.model_dump()
        merged.update(self.model_dump(exclude_unset=True))
        return GenerationParams.model_validate(merged)


class GenerateRequest(BaseModel):
    """One prompt for one model."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="A model name from the registry.")
    prompt: str = Field(min_length=1, description="The user prompt, before the model's template.")
    prompt_id: str | None = Field(default=None, description="The caller's key, echoed back.")
    params: GenerationParams = Field(default_factory=GenerationParams)
    max_upstream_calls: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CALL_BUDGET,
        description="The most calls to the model server this generation may make, every retry "
        "included; the service's call_budget caps it too.",
    )


class GenerationResult(BaseModel):
    """One model's response to one prompt, with what is needed to reproduce it."""

    model: str = Field(description="The registry name the caller asked for.")
    prompt_id: str | None = None
    text: str
    finish_reason: FinishReason
    generated_tokens: int | None = None
    prompt_tokens: int | None = None
    latency_seconds: float = Field(description="Wall time of the whole call, retries included.")
    seed: int | None = Field(default=None, description="The seed used, as the server reports it.")
    model_id: str | None = Field(default=None, description="The served model, from /info.")
    model_revision: str | None = Field(default=None, description="Its commit sha, from /info.")
    backend: Backend
    mode: Mode
    params: GenerationParams = Field(description="The parameters in effect, defaults applied.")


class BatchPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="The caller's key for this prompt.")
    text: str = Field(min_length=1)


class BatchRequest(BaseModel):
    """Every prompt for every model listed (their cross product), under one set of params."""

    model_config = ConfigDict(extra="forbid")

    prompts: list[BatchPrompt] = Field(min_length=1)
    models: list[str] = Field(min_length=1)
    params: GenerationParams = Field(default_factory=GenerationParams)


class LineError(BaseModel):
    """The error of one batch item: the common error body plus the status it would have had."""

    error: str
    error_type: str
    status_code: int


class BatchResultLine(BaseModel):
    type: Literal["result"] = "result"
    index: int = Field(description="Position in the cross product: prompt-major, model-minor.")
    prompt_id: str
    model: str
    result: GenerationResult


class BatchErrorLine(BaseModel):
    type: Literal["error"] = "error"
    index: int
    prompt_id: str
    model: str
    error: LineError


class BatchSummaryLine(BaseModel):
    """The last line of a complete stream."""

    type: Literal["summary"] = "summary"
    total: int
    succeeded: int
    failed: int


BatchLine = Annotated[
    BatchResultLine | BatchErrorLine | BatchSummaryLine, Field(discriminator="type")
]
BATCH_LINE: TypeAdapter[BatchResultLine | BatchErrorLine | BatchSummaryLine] = TypeAdapter(
    BatchLine
)


class ServerInfo(BaseModel):
    """What a model server says about itself (TGI's ``/info``; less for other servers)."""

    model_id: str | None = None
    model_revision: str | None = None
    version: str | None = None
    max_input_tokens: int | None = None
    max_total_tokens: int | None = None
    max_concurrent_requests: int | None = None


class ModelEntry(BaseModel):
    """One registry entry as ``GET /v1/models`` shows it, with the server's live state."""

    name: str
    backend: Backend
    mode: Mode
    base_url: str | None = None
    defaults: GenerationParams
    concurrency: int
    healthy: bool
    health_reason: str | None = Field(default=None, description="Why it is not healthy.")
    server: ServerInfo | None = None


class ModelList(BaseModel):
    models: list[ModelEntry]
