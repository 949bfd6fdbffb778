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


def to_wire(value: Any, path: str = "$") -> Any:
    """Turn a JSON-like value with bytes/datetimes into plain JSON types."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError("non-finite numbers cannot be stored", field=path)
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError("datetimes must be timezone-aware", field=path)
        return {"$t": value.isoformat()}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError("object keys must be strings", field=path)
            out[k] = to_wire(v, f"{path}.{k}")
        return {"$o": out} if any(k.startswith("$") for k in out) else out
    if isinstance(value, (list, tuple)):
        return [to_wire(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise ValidationError(f"values of type {type(value).__name__} cannot be stored", field=path)


def from_wire(value: Any) -> Any:
    """Inverse of :func:`to_wire`."""
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
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
    return json.dumps(to_wire(value), separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return from_wire(json.loads(text))
