"""The one error contract: every error body is ``{"error": str, "error_type": str}``.

Services raise subclasses of :class:`HarmrankError`; ``register_error_handlers`` installs one
handler on the base class (plus the framework's own validation and HTTP errors) so no route ever
answers in another shape. ``error_type`` values are stable identifiers clients may switch on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: str
    error_type: str
    details: list[dict[str, Any]] | None = None


class HarmrankError(Exception):
    """Base of every error a harmrank service raises on purpose.

    A subclass states its answer in its class line, ``class Gone(HarmrankError, status_code=410,
    error_type="gone")`` (or as class attributes); what it leaves out it inherits.
    """

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "internal"
    transient: ClassVar[bool | None] = None
    """Whether a task that failed with it may succeed when tried again later; None: the error
    does not say (:func:`is_transient` decides by the status)."""

    def __init_subclass__(
        cls,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        transient: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status_code is not None:
            cls.status_code = status_code
        if error_type is not None:
            cls.error_type = error_type
        if transient is not None:
            cls.transient = transient

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> ErrorBody:
        return ErrorBody(error=self.message, error_type=self.error_type, details=self.details)


class BadRequest(HarmrankError, status_code=400, error_type="bad_request", transient=False): ...


class NotFound(HarmrankError, status_code=404, error_type="not_found", transient=False): ...


class Conflict(HarmrankError, status_code=409, error_type="conflict"): ...


class PayloadTooLarge(
    HarmrankError, status_code=413, error_type="payload_too_large", transient=False
): ...


class InvalidInput(HarmrankError, status_code=422, error_type="validation", transient=False):
    """The request parsed but its content breaks a domain rule (a tie in a ranking, say)."""


class UpstreamError(HarmrankError, status_code=502, error_type="upstream_error", transient=True):
    """A downstream answered with an error of its own (a 5xx, or a dropped connection); its
    reason is carried in the message."""


class UpstreamRejected(UpstreamError, error_type="upstream_rejected", transient=False):
    """The downstream refused the request for good (a 4xx other than 408/409/429): the same
    request can only be refused again, so no layer retries it."""


class UpstreamUnavailable(
    HarmrankError, status_code=503, error_type="upstream_unavailable", transient=True
): ...


class UpstreamOverloaded(UpstreamUnavailable, error_type="upstream_overloaded"):
    """The model server stayed overloaded (429) through every retry."""


class UpstreamTimeout(
    HarmrankError, status_code=504, error_type="upstream_timeout", transient=True
): ...


class GenerationValidation(
    HarmrankError, status_code=422, error_type="generation_validation", transient=False
):
    """The model server refused the input for good: retrying the same call cannot help."""


class GenerationFailed(UpstreamError, error_type="generation_failed"):
    """The model server failed while generating (TGI's 424), even after bounded retries."""


class CallBudgetSpent(
    HarmrankError, status_code=503, error_type="call_budget_spent", transient=True
):
    """A judgment or generation used every upstream call its budget allows (transient: this
    attempt's calls are spent, and the queue's backoff helps)."""


_UPSTREAM = (
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
    UpstreamOverloaded,
    UpstreamTimeout,
    GenerationValidation,
    GenerationFailed,
    CallBudgetSpent,
)
UPSTREAM_ERRORS: dict[str, type[HarmrankError]] = {cls.error_type: cls for cls in _UPSTREAM}
"""The upstream errors by ``error_type``: a service that passes on an error it was given (the
judge, answering for its provider) raises the same class, so status and transience travel."""

# The one table of error types and whether a whole task is worth trying again later, made of
# what each class states: the task queue decides by it (error_type first; the status only for
# a type not listed here).
TRANSIENT_ERROR_TYPES: dict[str, bool] = {
    cls.error_type: cls.transient
    for cls in (*_UPSTREAM, InvalidInput, BadRequest, NotFound, PayloadTooLarge)
    if cls.transient is not None
}
TRANSIENT_STATUSES = frozenset({408, 409, 429})


def is_transient(error_type: str, status_code: int | None = None) -> bool:
    """Whether a failure of this type (and status) may succeed when tried again later."""
    known = TRANSIENT_ERROR_TYPES.get(error_type)
    if known is not None:
        return known
    if status_code is None:
        return True  # a failure that names no status: the task's max_attempts bounds it
    return status_code >= 500 or status_code in TRANSIENT_STATUSES


def error_response(
    status_code: int, body: ErrorBody, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status_code, content=body.model_dump(exclude_none=True), headers=headers
    )


async def _harmrank_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HarmrankError)
    # A subclass may state headers of its answer (Retry-After on a 503, say).
    return error_response(exc.status_code, exc.body(), getattr(exc, "headers", None))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    message = f"{where}: {first['msg']}" if where else str(first["msg"])
    return error_response(422, ErrorBody(error=message, error_type="validation", details=details))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error_type = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http_error"
    )
    return error_response(
        exc.status_code, ErrorBody(error=str(exc.detail), error_type=error_type), exc.headers
    )


async def _unhandled_error(_: Request, exc: Exception) -> JSONResponse:
    # Never leak a traceback or an exception's text (it may carry secrets) to a client.
    return error_response(500, ErrorBody(error="internal error", error_type="internal"))


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HarmrankError, _harmrank_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled_error)
