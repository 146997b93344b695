"""Read a multipart/form-data upload into bytes and fields, with errors in the common shape.

Starlette parses the form (python-multipart underneath); the routes take the request rather
than ``File``/``Form`` parameters so a malformed form is a 400 ``invalid_form`` like every other
error, and the file's bytes reach the validator exactly as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from harmrank.common.errors import BadRequest, InvalidInput
from harmrank.gateway.edge import text_problem


class InvalidForm(BadRequest):
    error_type = "invalid_form"


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class FormData:
    fields: dict[str, str]
    files: dict[str, UploadedFile]

    def file(self, name: str) -> UploadedFile:
        found = self.files.get(name)
        if found is None:
            raise InvalidForm(f"the form has no file field {name!r}")
        return found

    def field(self, name: str) -> str | None:
        return self.fields.get(name)


def _storable_field(name: str, value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise InvalidInput(f"form field {name!r}: {problem}")
    return value


async def read_form(request: Request) -> FormData:
    """The request's multipart form; 400 ``invalid_form`` when it is not one."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidForm("expected a multipart/form-data body")
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    try:
        async with request.form() as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    files[name] = UploadedFile(value.filename or "", value.content_type, data)
                else:
                    fields[name] = _storable_field(name, value)
    except HTTPException as exc:  # Starlette's answer to a malformed multipart body
        raise InvalidForm(f"malformed multipart body: {exc.detail}") from exc
    except ClientDisconnect as exc:
        # The client left mid-body, or the body limit cut it off (and answered 413 already):
        # an error answer of ours, never an unhandled exception that drops the connection.
        raise InvalidForm("the request body ended early: the client disconnected") from exc
    return FormData(fields, files)


def form_body(required: list[str], **fields: dict[str, Any]) -> dict[str, Any]:
    """The ``openapi_extra`` that documents a route's form: FastAPI cannot see its fields, since
    the route reads the form itself. ``fields`` are JSON schemas by field name."""
    schema = {"type": "object", "required": required, "properties": fields}
    content = {"multipart/form-data": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


def file_field(description: str) -> dict[str, Any]:
    """The JSON schema of a form's file field."""
    return {"type": "string", "format": "binary", "description": description}
