"""Database rows to SDK models: dicts from plain selects, and the value tuples of query ``create_event``.

JSON columns hold the codec's wire form (:mod:`worlds_sdk.codec`); payloads are
``bytea``; times are ``timestamptz`` read in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from worlds_sdk.codec import from_wire
from worlds_sdk.models import Event, EventResult, Hook, Run, Step, StructuredError, Wait

Row = Mapping[str, Any]


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _error(value: Any) -> StructuredError | None:
    if value is None:
        return None
    return StructuredError(message=value["message"], stack=value.get("stack"), code=value.get("code"))


def run_from_row(r: Row) -> Run:
    return Run(
        run_id=r["run_id"],
        status=r["status"],
        deployment_id=r["deployment_id"],
        workflow_name=r["workflow_name"],
        spec_version=r["spec_version"],
        execution_context=from_wire(r["execution_context"]),
        input=_bytes(r["input"]),
        output=_bytes(r["output"]),
        error=_error(r["error"]),
        started_at=r["started_at"],
        completed_at=r["completed_at"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def step_from_row(r: Row) -> Step:
    return Step(
        run_id=r["run_id"],
        step_id=r["step_id"],
        step_name=r["step_name"],
        status=r["status"],
        input=_bytes(r["input"]),
        output=_bytes(r["output"]),
        error=_error(r["error"]),
        attempt=r["attempt"],
        spec_version=r["spec_version"],
        started_at=r["started_at"],
        completed_at=r["completed_at"],
        retry_after=r["retry_after"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def hook_from_row(r: Row) -> Hook:
    return Hook(
        hook_id=r["hook_id"],
        run_id=r["run_id"],
        token=r["token"],
        metadata=_bytes(r["metadata"]),
        is_webhook=r["is_webhook"],
        spec_version=r["spec_version"],
        created_at=r["created_at"],
    )


def wait_from_row(r: Row) -> Wait:
    return Wait(
        run_id=r["run_id"],
        wait_id=r["wait_id"],
        status=r["status"],
        resume_at=r["resume_at"],
        completed_at=r["completed_at"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def event_from_row(r: Row) -> Event:
    return Event(
        run_id=r["run_id"],
        event_id=r["event_id"],
        event_type=r["event_type"],
        correlation_id=r["correlation_id"],
        event_data=from_wire(r["event_data"]),
        spec_version=r["spec_version"],
        created_at=r["created_at"],
    )


def entity_of(event_type: str) -> str:
    """The one entity kind (``run``, ``step``, ``hook``, ``wait``) an event of ``event_type`` may set: its prefix."""
    return event_type.partition("_")[0]


EVENT_COLUMNS = ("run_id", "event_id", "event_type", "correlation_id", "event_data", "spec_version", "created_at")
ENTITY_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "run": (
        "run_id", "status", "deployment_id", "workflow_name", "spec_version", "execution_context", "input",
        "output", "error", "started_at", "completed_at", "created_at", "updated_at",
    ),
    "step": (
        "run_id", "step_id", "step_name", "status", "input", "output", "error", "attempt", "spec_version",
        "started_at", "completed_at", "retry_after", "created_at", "updated_at",
    ),
    "hook": ("hook_id", "run_id", "token", "metadata", "is_webhook", "spec_version", "created_at"),
    "wait": ("run_id", "wait_id", "status", "resume_at", "completed_at", "created_at", "updated_at"),
}  # fmt: skip
"""The columns query ``create_event`` returns, in order: the event's, then those of the one entity kind asked for.

The first column of each is NOT NULL in its table, so NULL there means "no such row"."""

_BUILDERS: Mapping[str, Callable[[Row], Any]] = {
    "run": run_from_row,
    "step": step_from_row,
    "hook": hook_from_row,
    "wait": wait_from_row,
}


def result_from_values(entity: str, values: Sequence[Any]) -> EventResult:
    """The outcome of ``create_event_v1`` (query ``create_event`` for ``entity``): the last event and the entity.

    ``entity`` is the kind of entity the event type can affect (``run`` for ``run_*``, …):
    ``create_event_v1`` sets no other, so only its columns are fetched -- fetching and
    decoding all four kinds' ~40 mostly-NULL columns cost more client time than the rest.
    """
    split = len(EVENT_COLUMNS)
    event = event_from_row(dict(zip(EVENT_COLUMNS, values[:split], strict=True))) if values[0] is not None else None
    found = None
    if values[split] is not None:
        found = _BUILDERS[entity](dict(zip(ENTITY_COLUMNS[entity], values[split:], strict=True)))
    return EventResult(event=event, **{entity: found})
