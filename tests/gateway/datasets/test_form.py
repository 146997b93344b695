"""Reading multipart/form-data uploads: bytes kept exactly, malformed forms a clear 400."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request

from harmrank.common.errors import register_error_handlers
from harmrank.gateway.datasets.form import read_form


def form_app() -> FastAPI:
    app = FastAPI()
    register_error_handlers(app)

    @app.post("/form")
    async def echo(request: Request) -> dict[str, object]:
        form = await read_form(request)
        upload = form.file("file")
        return {
            "fields": form.fields,
            "filename": upload.filename,
            "content_type": upload.content_type,
            "data": upload.data.hex(),
        }

    return app


async def post(**kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=form_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/form", **kwargs)  # type: ignore[arg-type]


async def test_files_and_fields_come_back_byte_for_byte() -> None:
    payload = b"a\r\nb\rc\n--not-a-boundary\r\n\x00\xff\xfe" + "é😀".encode()
    response = await post(
        files={"file": ("naïve name.csv", payload, "text/csv")},
        data={"name": "ds-1", "annotator": "g 1"},
    )
    body = response.json()
    assert bytes.fromhex(body["data"]) == payload
    assert body["filename"] == "naïve name.csv"
    assert body["content_type"] == "text/csv"
    assert body["fields"] == {"name": "ds-1", "annotator": "g 1"}


async def test_an_empty_file_is_an_empty_file() -> None:
    response = await post(files={"file": ("e.csv", b"", "text/csv")})
    assert response.json()["data"] == ""


@pytest.mark.parametrize("content_type", ["application/json", "text/csv; boundary=x"])
async def test_a_body_that_is_not_a_form_is_refused(content_type: str) -> None:
    response = await post(content=b"{}", headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.json()["error_type"] == "invalid_form"


async def test_a_malformed_body_is_refused() -> None:
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    response = await post(content=b"--xyz\r\nnot a header line\r\n\r\n", headers=headers)
    assert response.status_code == 400
    assert response.json()["error_type"] == "invalid_form"


async def test_a_missing_file_field_is_named() -> None:
    response = await post(files={"other": ("a.csv", b"", "text/csv")}, data={"name": "x"})
    assert response.status_code == 400
    assert "'file'" in response.json()["error"]
