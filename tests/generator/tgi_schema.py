"""TGI's request bodies as its published OpenAPI document defines them (``/work/shared/specs``).

The document is OpenAPI 3.0 (``nullable``); it is turned into one JSON Schema (2020-12) with the
components as ``$defs``. Plain object components take no undeclared properties here: TGI may ignore
an unknown field, but a field we send that TGI does not define is a field that does nothing.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC_PATHS = (
    Path(__file__).resolve().parents[3] / "shared" / "specs" / "tgi-openapi.json",
    Path("/work/shared/specs/tgi-openapi.json"),
)
REQUESTS = {"/generate": "GenerateRequest", "/v1/chat/completions": "ChatRequest"}


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _convert(value) for key, value in node.items() if key not in ("example",)}
    if isinstance(out.get("$ref"), str):
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    if out.pop("nullable", False):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    # Only a plain object component: one composed with allOf must stay open for its parts.
    if schema.get("type") == "object" and "properties" in schema:
        return schema | {"additionalProperties": False}
    return schema


def _inlined(node: Any, defs: dict[str, Any], within: tuple[str, ...] = ()) -> Any:
    """``node`` with each ``$ref`` to a component replaced by the component itself (a ``$ref``
    beside other keywords applies with them, as ``allOf`` does): the same schema, without the
    reference lookups that were most of the stand-in's validation time. A component that
    refers back to itself keeps its ``$ref``."""
    if isinstance(node, list):
        return [_inlined(item, defs, within) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _inlined(value, defs, within) for key, value in node.items() if key != "$ref"}
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return out if ref is None else out | {"$ref": ref}
    name = ref.removeprefix("#/$defs/")
    if name in within:
        return out | {"$ref": ref}
    target = _inlined(defs[name], defs, (*within, name))
    if not out:
        return target
    return out | {"allOf": [*out.get("allOf", []), target]}


@cache
def _validator(name: str) -> Draft202012Validator:
    path = next(p for p in SPEC_PATHS if p.exists())
    schemas = json.loads(path.read_text())["components"]["schemas"]
    defs = {key: _closed(_convert(value)) for key, value in schemas.items()}
    schema = {"$defs": defs, **_inlined(defs[name], defs, (name,))}
    return Draft202012Validator(schema)


def request_problems(path: str, body: Any) -> list[str]:
    """How ``body`` breaks TGI's request schema for ``path`` (empty: it fits)."""
    errors = _validator(REQUESTS[path]).iter_errors(body)
    return [f"{'.'.join(map(str, e.absolute_path)) or 'body'}: {e.message}" for e in errors]
