"""Small constructors for well-formed requests, so tests state only what matters to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from worlds_sdk.models import EventRequest, Run
from worlds_sdk.protocols import World

DEPLOYMENT = "dpl_conformance"
WORKFLOW = "wf_conformance"


def run_created_request(input: bytes = b"\x00in", workflow_name: str = WORKFLOW) -> EventRequest:
    return EventRequest(
        event_type="run_created",
        event_data={"deployment_id": DEPLOYMENT, "workflow_name": workflow_name, "input": input},
    )


def bootstrap_request(input: bytes = b"\x00in") -> EventRequest:
    """A ``run_started`` carrying the data to create the run if it is missing (EV-6)."""
    return EventRequest(
        event_type="run_started",
        event_data={"deployment_id": DEPLOYMENT, "workflow_name": WORKFLOW, "input": input},
    )


def step_request(event_type: str, step_id: str, **data: Any) -> EventRequest:
    defaults: dict[str, dict[str, Any]] = {
        "step_created": {"step_name": "conformance_step", "input": b"\x00step"},
        "step_completed": {"result": b"\x00result"},
        "step_failed": {"error": {"message": "boom"}},
        "step_retrying": {"error": {"message": "retry"}},
    }
    payload = {**defaults.get(event_type, {}), **data}
    return EventRequest(event_type=event_type, correlation_id=step_id, event_data=payload or None)


def hook_request(event_type: str, hook_id: str, **data: Any) -> EventRequest:
    return EventRequest(event_type=event_type, correlation_id=hook_id, event_data=data or None)


def wait_request(event_type: str, wait_id: str, resume_at: datetime | None = None) -> EventRequest:
    data = {"resume_at": resume_at} if resume_at is not None else None
    return EventRequest(event_type=event_type, correlation_id=wait_id, event_data=data)


async def new_run(world: World, *, started: bool = False, input: bytes = b"\x00in") -> Run:
    created = await world.events.create(None, run_created_request(input))
    assert created.run is not None, "run_created must return the run (EV-2)"
    if not started:
        return created.run
    result = await world.events.create(created.run.run_id, EventRequest(event_type="run_started"))
    assert result.run is not None
    return result.run


async def new_step(world: World, run_id: str, step_id: str, *, started: bool = False) -> None:
    await world.events.create(run_id, step_request("step_created", step_id))
    if started:
        await world.events.create(run_id, step_request("step_started", step_id))


def terminal_request(kind: str) -> EventRequest:
    """The request that ends a run as ``kind`` (completed, failed or cancelled)."""
    if kind == "completed":
        return EventRequest(event_type="run_completed", event_data={"output": b"\x00out"})
    if kind == "failed":
        return EventRequest(event_type="run_failed", event_data={"error": {"message": "failed"}})
    return EventRequest(event_type="run_cancelled")
