"""Rows to records and back.

An entity is stored as one body of codec JSON (``worlds_sdk.codec``), the same
encoding the SDK uses for event data and messages, so payload bytes and
timezone-aware datetimes round-trip exactly; the columns beside the body only
exist to key, filter and sort. Sort times are integer microseconds (UTC).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from worlds_sdk import codec
from worlds_sdk.models import Event, Hook, Run, Step, StructuredError, Wait

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Entity = TypeVar("Entity", Run, Step, Hook, Wait)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch: an exact, sortable integer for an aware datetime."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def encode(entity: Run | Step | Hook | Wait) -> str:
    return codec.dumps({f.name: _plain(getattr(entity, f.name)) for f in dataclasses.fields(entity)})


def decode(cls: type[Entity], body: str) -> Entity:
    values: dict[str, Any] = codec.loads(body)
    if isinstance(values.get("error"), dict):
        values["error"] = StructuredError(**values["error"])
    return cls(**values)


def event_from_row(row: sqlite3.Row) -> Event:
    return Event(
        run_id=row["run_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        correlation_id=row["correlation_id"],
        event_data=None if row["data"] is None else codec.loads(row["data"]),
        spec_version=row["spec_version"],
        created_at=from_us(row["created_us"]),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, StructuredError):
        return {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
    return value
