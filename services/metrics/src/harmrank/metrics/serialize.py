"""Turn the library's result dataclasses into JSON-ready values, and back.

numpy arrays become nested lists and NaN (an undefined figure, such as a win rate of a pair with
no decisive prompt) becomes ``None``, because JSON has no NaN and ``null`` reads as "undefined".

``from_jsonable`` reverses it by the dataclasses' type hints, so a report the metrics service
computed and the gateway stored as JSON renders as if it had been computed in-process; a result
type a later change adds round-trips with no code here, as long as its fields are typed.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import numpy as np

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def from_jsonable(cls: type[T], value: Any) -> T:
    """The ``cls`` dataclass that ``to_jsonable`` turned into ``value``.

    Raises ``ValueError`` naming the field when ``value`` does not have the shape of ``cls``.
    """
    result: T = _convert(cls, value, cls.__name__)
    return result


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if hint is Any or hint is object:
        return value
    if origin in (Union, types.UnionType):
        return _union(hint, value, where)
    if value is None:
        if hint is float:
            return math.nan  # to_jsonable wrote an undefined figure as null
        raise ValueError(f"{where}: null where {hint} was expected")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass(hint, value, where)
    if hint is np.ndarray or origin is np.ndarray:
        return _array(hint, value)
    if origin is Literal or hint in (str, int, bool):
        return value
    if hint is float:
        return float(value)
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        return _sequence(hint, value, where)
    if origin in (dict, Mapping) or hint is dict:
        return _mapping(hint, value, where)
    raise ValueError(f"{where}: cannot read a {hint} back from JSON")


def _union(hint: Any, value: Any, where: str) -> Any:
    arms = [a for a in get_args(hint) if a is not type(None)]
    if value is None and len(arms) < len(get_args(hint)):
        return None
    if len(arms) == 1:
        return _convert(arms[0], value, where)
    for arm in arms:  # e.g. str | int: the first arm that reads the value as it is
        try:
            converted = _convert(arm, value, where)
        except (ValueError, TypeError):
            continue
        if type(converted) is type(value) or dataclasses.is_dataclass(converted):
            return converted
    return value


def _dataclass(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: an object was expected")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    kwargs = {
        name: _convert(hints[name], value[name], f"{where}.{name}")
        for name in fields
        if name in value
    }
    return cls(**kwargs)


def _array(hint: Any, value: Any) -> Any:
    dtype_arg = get_args(hint)[1] if len(get_args(hint)) == 2 else None
    scalar = get_args(dtype_arg)[0] if dtype_arg is not None and get_args(dtype_arg) else None
    if scalar is not None and np.issubdtype(scalar, np.integer):
        return np.array(value, dtype=scalar)
    return np.array(_nulls_to_nan(value), dtype=scalar or np.float64)


def _nulls_to_nan(value: Any) -> Any:
    if value is None:
        return math.nan
    if isinstance(value, list):
        return [_nulls_to_nan(v) for v in value]
    return value


def _sequence(hint: Any, value: Any, where: str) -> Any:
    if not isinstance(value, list):
        raise ValueError(f"{where}: a list was expected")
    args = get_args(hint)
    origin = get_origin(hint) or hint
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise ValueError(f"{where}: {len(args)} items were expected, not {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
    item = args[0] if args else Any
    items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _mapping(hint: Any, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: an object was expected")
    key, item = get_args(hint) or (str, Any)
    read_key = int if key is int else (lambda k: k)
    return {read_key(k): _convert(item, v, f"{where}[{k!r}]") for k, v in value.items()}
