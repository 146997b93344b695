"""Log records that say where they come from: service, request id, trace and span ids, and the
run and task a worker is on. ``HARMRANK_LOG_FORMAT=json`` writes one JSON object per line (for a
log pipeline); the default ``text`` puts the same ids in brackets after the level.

One handler on the root logger and on uvicorn's loggers, so the access log and the services'
own messages come out alike. The ids come from context variables: the request id of
:mod:`harmrank.common.request_id`, the current OpenTelemetry span, and :func:`log_context`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from harmrank.common.request_id import current_request_id

FORMAT_VARIABLE = "HARMRANK_LOG_FORMAT"
FORMATS = ("text", "json")
CONTEXT_FIELDS = ("service", "request_id", "trace_id", "span_id", "run_id", "task_id")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [%(service)s request_id=%(request_id)s "
    "trace_id=%(trace_id)s run_id=%(run_id)s task_id=%(task_id)s] %(message)s"
)

_ids: ContextVar[dict[str, int]] = ContextVar("harmrank_log_ids", default={})  # noqa: B039


@contextlib.contextmanager
def log_context(**ids: int) -> Iterator[None]:
    """Put ids (``run_id``, ``task_id``) on every record logged inside the block."""
    token = _ids.set({**_ids.get(), **ids})
    try:
        yield
    finally:
        _ids.reset(token)


class ContextFilter(logging.Filter):
    """Adds the context fields to each record (None where there is no such context)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        ids = _ids.get()
        record.service = self.service
        record.request_id = current_request_id()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else None
        record.span_id = format(span.span_id, "016x") if span.is_valid else None
        record.run_id = ids.get("run_id")
        record.task_id = ids.get("task_id")
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; fields without a value are left out."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event |= {f: getattr(record, f, None) for f in CONTEXT_FIELDS}
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps({k: v for k, v in event.items() if v is not None}, default=str)


def log_format() -> str:
    chosen = os.environ.get(FORMAT_VARIABLE, "text").strip().lower() or "text"
    if chosen not in FORMATS:
        raise ValueError(f"{FORMAT_VARIABLE}={chosen!r}: use one of {', '.join(FORMATS)}")
    return chosen


def configure_logging(service: str, level: str = "info") -> logging.Handler:
    """Install harmrank's handler (once per process: the first service named keeps it)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, _HarmrankHandler):
            return handler
    handler = _HarmrankHandler(sys.stderr)
    handler.addFilter(ContextFilter(service))
    fmt = log_format()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    if root.level > logging.DEBUG:
        # httpx logs every request at INFO: the servers' access logs already record them.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    for name in UVICORN_LOGGERS:
        # uvicorn's own handlers would write the same events a second time, unformatted.
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    return handler


class _HarmrankHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so a second call does not add another."""
