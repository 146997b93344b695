"""Check a JSON value against the providers' official SDK types, as strictly as the APIs are.

The SDKs describe requests as ``TypedDict``s (OpenAI, Anthropic) and as pydantic models with
``extra="forbid"`` (google-genai); responses as pydantic models. pydantic cannot build a
validator for the request TypedDicts (they mention ``IO[bytes]`` and lazy iterables) and would
ignore unknown keys anyway, so :func:`type_problems` walks the type hints itself: an unknown
key, a missing required key or a value of the wrong type is a problem, as the API would say.
"""

from __future__ import annotations

import collections.abc as abc
import functools
import types
import typing
from typing import Any

import typing_extensions
from pydantic import BaseModel, ValidationError

_WRAPPERS = {typing.Annotated, typing_extensions.Required, typing_extensions.NotRequired}
_WRAPPERS |= {typing_extensions.ReadOnly, typing_extensions.Annotated}
_SEQUENCES = {list, abc.Iterable, abc.Sequence, typing.Iterable, typing.Sequence, tuple}
_MAPPINGS = {dict, abc.Mapping, typing.Mapping, dict}


def type_problems(value: Any, hint: Any, where: str = "body") -> list[str]:
    """Every way ``value`` breaks ``hint``; empty when it fits."""
    hint = _unwrap(hint)
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return []
    if typing_extensions.is_typeddict(hint):
        return _typed_dict_problems(value, hint, where)
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return _model_problems(value, hint, where)
    if origin in (typing.Union, types.UnionType):
        return _union_problems(value, typing.get_args(hint), where)
    if origin is typing.Literal:
        ok = value in typing.get_args(hint)
        return [] if ok else [f"{where}: {value!r} is not one of {typing.get_args(hint)}"]
    if origin in _SEQUENCES or hint in _SEQUENCES:
        return _sequence_problems(value, hint, where)
    if origin in _MAPPINGS or hint in _MAPPINGS:
        return [] if isinstance(value, dict) else [f"{where}: expected an object"]
    return _scalar_problems(value, hint, where)


def _unwrap(hint: Any) -> Any:
    while typing.get_origin(hint) in _WRAPPERS:
        hint = typing.get_args(hint)[0]
    if isinstance(hint, typing_extensions.TypeAliasType):
        return _unwrap(hint.__value__)
    return hint


@functools.cache
def _hints_of(typed_dict: Any) -> dict[str, Any]:
    """A TypedDict's resolved hints: resolving them (forward references evaluated anew) was
    half of the OpenAI stand-in's CPU per request under ``bench/platform_overhead.py``."""
    return typing.get_type_hints(typed_dict, include_extras=True)


def _typed_dict_problems(value: Any, hint: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected an object ({hint.__name__})"]
    hints = _hints_of(hint)
    problems = [
        f"{where}.{key}: not a field of {hint.__name__}" for key in value if key not in hints
    ]
    missing = [key for key in hint.__required_keys__ if key not in value]
    problems += [f"{where}.{key}: required by {hint.__name__}" for key in missing]
    for key, item in value.items():
        if key in hints:
            problems += type_problems(item, hints[key], f"{where}.{key}")
    return problems


def _model_problems(value: Any, model: type[BaseModel], where: str) -> list[str]:
    try:
        model.model_validate(value)
    except ValidationError as exc:
        return [f"{where}: {err['loc']}: {err['msg']}" for err in exc.errors()]
    return []


def _union_problems(value: Any, options: tuple[Any, ...], where: str) -> list[str]:
    found = [type_problems(value, option, where) for option in options]
    if any(not problems for problems in found):
        return []
    # The closest option (fewest problems) explains the failure best.
    return min(found, key=len)


def _sequence_problems(value: Any, hint: Any, where: str) -> list[str]:
    if not isinstance(value, list):
        return [f"{where}: expected a list"]
    args = typing.get_args(hint)
    item = args[0] if args else Any
    return [p for i, v in enumerate(value) for p in type_problems(v, item, f"{where}[{i}]")]


def _scalar_problems(value: Any, hint: Any, where: str) -> list[str]:
    if hint is type(None):
        ok = value is None
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(hint, type):
        ok = isinstance(value, hint)
    else:
        return [f"{where}: cannot check against {hint!r}"]
    return [] if ok else [f"{where}: {value!r} is not a {getattr(hint, '__name__', hint)}"]


def extra_fields(model: BaseModel, where: str = "reply") -> list[str]:
    """Fields a response model took without knowing them (OpenAI's and Anthropic's response
    models allow extras, the APIs send none we would invent): a stand-in must not make some up."""
    found = [f"{where}.{key}" for key in (model.model_extra or {})]
    for name in type(model).model_fields:
        found += _extras_in(getattr(model, name), f"{where}.{name}")
    return found


def _extras_in(value: Any, where: str) -> list[str]:
    if isinstance(value, BaseModel):
        return extra_fields(value, where)
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _extras_in(v, f"{where}[{i}]")]
    return []
