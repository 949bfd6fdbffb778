"""Requests and outcomes as JSON, to pass them between the suite and its child processes."""

from __future__ import annotations

import dataclasses
from typing import Any

from worlds_sdk import codec
from worlds_sdk.errors import WorkflowWorldError
from worlds_sdk.models import EventRequest, EventResult


def request_to_wire(request: EventRequest) -> Any:
    return codec.to_wire(dataclasses.asdict(request))


def request_from_wire(data: Any) -> EventRequest:
    return EventRequest(**codec.from_wire(data))


def outcome_to_wire(result: EventResult | None, error: BaseException | None) -> dict[str, Any]:
    """A race participant's outcome: which event it appended, or which error it got."""
    if error is not None:
        status = error.status if isinstance(error, WorkflowWorldError) else None
        return {"ok": False, "error": type(error).__name__, "status": status, "message": str(error)}
    assert result is not None
    event = result.event
    return {
        "ok": True,
        "event_type": event.event_type if event else None,
        "event_data": codec.to_wire(event.event_data) if event else None,
        "hook_id": result.hook.hook_id if result.hook else None,
    }
