"""A small synchronous client of the gateway's API for the CLI, with its errors made plain.

Every failure becomes a :class:`CliError` with the gateway's ``error_type`` and message (the
one error body every service answers), or ``unreachable`` naming the URL it could not reach;
the commands print it as ``error (error_type): message`` and exit with status 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class CliError(Exception):
    """Shown as ``error (error_type): message``; the command exits with status 2."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def error_of(response: httpx.Response) -> CliError:
    """The error body's type and message; the status and some text when there is none."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error_type"), str):
        return CliError(body["error_type"], str(body.get("error", "")))
    text = response.text.strip()[:300] or response.reason_phrase
    return CliError(f"http_{response.status_code}", text)


class Gateway:
    """The gateway at ``base_url``; writes carry the bearer token when one is given."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=TIMEOUT)

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response when it is a success; raises :class:`CliError` otherwise."""
        with self._reaching():
            response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    @contextmanager
    def stream(self, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed GET; raises :class:`CliError` for an error answer."""
        with self._reaching(), self.http.stream("GET", path, **kwargs) as response:
            if response.status_code >= 400:
                response.read()
                raise error_of(response)
            yield response

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as exc:
            raise CliError(
                "unreachable", f"cannot connect to the gateway at {self.base_url} ({exc})"
            ) from exc
        except httpx.TimeoutException as exc:
            raise CliError(
                "timeout", f"the gateway at {self.base_url} did not answer in time ({exc})"
            ) from exc
        except httpx.TransportError as exc:
            raise CliError(
                "unreachable", f"talking to the gateway at {self.base_url} failed ({exc})"
            ) from exc
