"""JSON with bytes and datetimes: the one storage/wire encoding for event data and messages.

Event data and queue messages are JSON-like but may hold raw ``bytes`` (runtime
payloads) and datetimes (``resume_at``, ``retry_after``). Both reference worlds
store them through this codec, and the JSON Schemas describe this same wire form,
so a World in another language can read and write it.

Tags: ``{"$b": base64}`` is bytes, ``{"$t": iso8601}`` a datetime, and a dict whose
own keys start with ``$`` is wrapped as ``{"$o": {...}}`` so user data can never be
mistaken for a tag.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .errors import ValidationError

_PLAIN = frozenset({str, int, bool, type(None)})
"""Types that are their own wire form: checked by exact type first, the hot case."""


class _Unstorable(Exception):
    """A value the codec cannot store; ``trail`` collects the path while the recursion unwinds.

    The path is built only on this (rare) error, not as a string per key and item
    on every call: building it eagerly was a third of the codec's time per event.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.trail: list[str] = []


def to_wire(value: Any, path: str = "$") -> Any:
    """Turn a JSON-like value with bytes/datetimes into plain JSON types."""
    try:
        return _to_wire(value)
    except _Unstorable as exc:
        raise ValidationError(exc.message, field=path + "".join(reversed(exc.trail))) from None
    except RecursionError:
        raise ValidationError("the value is nested too deeply to be stored", field=path) from None


_LEAVES = frozenset({float, datetime, bytearray, memoryview})


def _to_wire(value: Any) -> Any:
    """One frame per level of nesting (as deep as the codec always went); exact types first."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is bytes:
        return {"$b": base64.b64encode(value).decode("ascii")}
    if kind in _LEAVES:
        return _leaf_to_wire(value)
    if kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
        out: dict[str, Any] = {}
        tagged = False
        for k, v in value.items():
            if not isinstance(k, str):
                raise _Unstorable("object keys must be strings")
            try:
                out[k] = _to_wire(v)
            except _Unstorable as exc:
                exc.trail.append(f".{k}")
                raise
            if k[:1] == "$":
                tagged = True
        return {"$o": out} if tagged else out
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_to_wire(v))
            except _Unstorable as exc:
                exc.trail.append(f"[{i}]")
                raise
        return items
    return _leaf_to_wire(value)


def _leaf_to_wire(value: Any) -> Any:
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _Unstorable("non-finite numbers cannot be stored")
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _Unstorable("datetimes must be timezone-aware")
        return {"$t": value.isoformat()}
    raise _Unstorable(f"values of type {type(value).__name__} cannot be stored")


def from_wire(value: Any) -> Any:
    """Inverse of :func:`to_wire`."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list or isinstance(value, list):
        return [from_wire(v) for v in value]
    if kind is dict or isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "$b":
                return base64.b64decode(inner)
            if tag == "$t":
                return datetime.fromisoformat(inner)
            if tag == "$o":
                return {k: from_wire(v) for k, v in inner.items()}
        return {k: from_wire(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> str:
    """Compact JSON text of ``value`` in the wire form."""
    return wire_text(to_wire(value))


def wire_text(wire: Any) -> str:
    """Compact JSON text of a value already in the wire form (what :func:`to_wire` returned).

    For a caller that holds the wire form anyway -- the one
    :func:`~worlds_sdk.validation.validate_request` returns -- so the value is not
    converted twice.
    """
    return json.dumps(wire, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return from_wire(json.loads(text))
