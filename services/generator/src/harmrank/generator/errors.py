"""How a model server's error statuses map onto the common errors.

TGI answers errors as ``{"error": str, "error_type": str}``: 422 ``validation`` (input too
long, bad parameters), 424 ``generation`` (failed while generating), 429 ``overloaded``, 503
when unhealthy. OpenAI-compatible servers (vLLM, SGLang) answer 400 with
``{"error": {"message": ...}}`` or ``{"message": ...}`` for the same input problems.
``harmrank.common.http.call`` reads the message and the server's own error type from either.
"""

from __future__ import annotations

from harmrank.common.errors import (
    GenerationFailed,
    GenerationValidation,
    HarmrankError,
    UpstreamOverloaded,
)

STATUS_ERRORS: dict[int, type[HarmrankError]] = {
    400: GenerationValidation,
    413: GenerationValidation,
    422: GenerationValidation,
    424: GenerationFailed,
    429: UpstreamOverloaded,
}

__all__ = ["STATUS_ERRORS", "GenerationFailed", "GenerationValidation", "UpstreamOverloaded"]
