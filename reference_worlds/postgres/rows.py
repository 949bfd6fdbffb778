"""Database rows (dicts: plain selects, and the prefixed flat columns of query ``create_event``) to SDK models.

JSON columns hold the codec's wire form (:mod:`worlds_sdk.codec`); payloads are
``bytea``; times are ``timestamptz`` read in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def result_from_row(r: Row) -> EventResult:
    """The outcome of ``create_event_v1`` (query ``create_event``): the last appended event and the entity.

    The query flattens each row type into columns prefixed with its name (``run_status``,
    ``step_attempt``, …); a row type the call did not set has a NULL key column.
    """
    return EventResult(
        event=event_from_row(_part(r, "event_")) if r["event_event_id"] is not None else None,
        run=run_from_row(_part(r, "run_")) if r["run_run_id"] is not None else None,
        step=step_from_row(_part(r, "step_")) if r["step_step_id"] is not None else None,
        hook=hook_from_row(_part(r, "hook_")) if r["hook_hook_id"] is not None else None,
        wait=wait_from_row(_part(r, "wait_")) if r["wait_wait_id"] is not None else None,
    )


def _part(r: Row, prefix: str) -> Row:
    """The columns of one row type, without their prefix."""
    start = len(prefix)
    return {column[start:]: value for column, value in r.items() if column.startswith(prefix)}
