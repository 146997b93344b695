"""Fixtures of ``tests/common``: the HTTP client's real upstream and client factory."""

from tests.common.http_upstream import closed_port, key, make_client, recorder, upstream

__all__ = ["closed_port", "key", "make_client", "recorder", "upstream"]
