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
    """Base of every error a harmrank service raises on purpose."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "internal"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> ErrorBody:
        return ErrorBody(error=self.message, error_type=self.error_type, details=self.details)


class BadRequest(HarmrankError):
    status_code = 400
    error_type = "bad_request"


class NotFound(HarmrankError):
    status_code = 404
    error_type = "not_found"


class Conflict(HarmrankError):
    status_code = 409
    error_type = "conflict"


class PayloadTooLarge(HarmrankError):
    status_code = 413
    error_type = "payload_too_large"


class InvalidInput(HarmrankError):
    """The request parsed but its content breaks a domain rule (a tie in a ranking, say)."""

    status_code = 422
    error_type = "validation"


class UpstreamError(HarmrankError):
    """A downstream answered with an error of its own; its reason is carried in the message."""

    status_code = 502
    error_type = "upstream_error"


class UpstreamUnavailable(HarmrankError):
    status_code = 503
    error_type = "upstream_unavailable"


class UpstreamTimeout(HarmrankError):
    status_code = 504
    error_type = "upstream_timeout"


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
