"""Python records <-> upstream's JavaScript shapes, at one boundary.

Upstream names are camelCase and ours snake_case -- in record attributes and in
the keys of ``event_data`` (one level: what is inside a payload or an
``execution_context`` is user data and is never renamed). Bytes and datetimes
travel in :mod:`worlds_sdk.codec`'s tagged wire form and become ``Uint8Array``
and ``Date`` in the shim, so every byte of a payload reaches the World and comes
back exactly, NUL bytes and invalid UTF-8 included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

from worlds_sdk.models import (
    ChunkPage,
    Event,
    EventRequest,
    EventResult,
    Hook,
    Page,
    Pagination,
    Run,
    Step,
    StreamChunk,
    StreamInfo,
    StructuredError,
    Wait,
)

T = TypeVar("T")

SPEC_VERSION_LEGACY = 1
_PAYLOADS = frozenset({"input", "output", "metadata"})
_CAMEL = re.compile(r"_([a-z0-9])")
_SNAKE = re.compile(r"(?<=[a-z0-9])([A-Z])")


def camel(name: str) -> str:
    """``step_name`` -> ``stepName``."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def snake(name: str) -> str:
    """``stepName`` -> ``step_name``."""
    return _SNAKE.sub(lambda m: "_" + m.group(1).lower(), name)


def camel_keys(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if data is None else {camel(key): value for key, value in data.items()}


def snake_keys(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if data is None else {snake(key): value for key, value in data.items()}


def options(**values: Any) -> dict[str, Any]:
    """A JS options object: camelCase keys, unset (``None``) values left out."""
    return {camel(key): value for key, value in values.items() if value is not None}


def pagination(page: Pagination) -> dict[str, Any]:
    return options(limit=page.limit, cursor=page.cursor, sort_order=page.sort_order)


def event_request(request: EventRequest) -> dict[str, Any]:
    return options(
        event_type=request.event_type,
        correlation_id=request.correlation_id,
        event_data=camel_keys(request.event_data),
        spec_version=request.spec_version,
    )


def record(cls: type[T], data: Mapping[str, Any]) -> T:
    """A frozen record from a JS object: keys renamed, fields we do not model dropped.

    Upstream adds fields over time (``expiredAt``, ``tag``); a field of the
    record that the World left out keeps its default, and a required one that
    is missing raises ``TypeError`` -- a malformed answer, not silently filled in.
    """
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {snake(key): value for key, value in data.items()}
    kept = {key: value for key, value in values.items() if key in known and value is not None}
    for payload in _PAYLOADS & known:  # absent payload = None (resolve_data="none" leaves them out)
        kept.setdefault(payload, None)
    if "spec_version" in known:
        # Optional in upstream's schemas; upstream reads an absent one as SPEC_VERSION_LEGACY (1).
        kept.setdefault("spec_version", SPEC_VERSION_LEGACY)
    if "error" in kept and isinstance(kept["error"], Mapping):
        kept["error"] = _structured_error(kept["error"])
    if "event_data" in kept:
        kept["event_data"] = snake_keys(kept["event_data"])
    return cls(**kept)


def _structured_error(data: Mapping[str, Any]) -> StructuredError:
    return StructuredError(message=str(data.get("message", "")), stack=data.get("stack"), code=data.get("code"))


def run(data: Mapping[str, Any]) -> Run:
    return record(Run, data)


def step(data: Mapping[str, Any]) -> Step:
    return record(Step, data)


def hook(data: Mapping[str, Any]) -> Hook:
    return record(Hook, data)


def event(data: Mapping[str, Any]) -> Event:
    return record(Event, data)


def event_result(data: Mapping[str, Any]) -> EventResult:
    parts: dict[str, Callable[[Mapping[str, Any]], Any]] = {
        "event": event,
        "run": run,
        "step": step,
        "hook": hook,
        "wait": lambda d: record(Wait, d),
    }
    return EventResult(**{key: make(data[key]) if data.get(key) else None for key, make in parts.items()})


def page(data: Mapping[str, Any], make: Callable[[Mapping[str, Any]], T]) -> Page[T]:
    return Page(data=[make(item) for item in data["data"]], cursor=data.get("cursor"), has_more=bool(data["hasMore"]))


def chunk_page(data: Mapping[str, Any]) -> ChunkPage:
    chunks = [StreamChunk(index=int(c["index"]), data=bytes(c["data"])) for c in data["data"]]
    return ChunkPage(data=chunks, cursor=data.get("cursor"), has_more=bool(data["hasMore"]), done=bool(data["done"]))


def stream_info(data: Mapping[str, Any]) -> StreamInfo:
    return StreamInfo(tail_index=int(data["tailIndex"]), done=bool(data["done"]))
