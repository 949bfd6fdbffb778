"""The event vocabulary: types, which data fields are payload, and stripping.

``resolve_data='none'`` must strip exactly the payload fields and keep every
piece of metadata; keeping that list here means every World strips the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Final, TypeVar

from .models import Event, EventResult, Hook, ResolveData, Run, Step

RUN_CREATED: Final = "run_created"
RUN_STARTED: Final = "run_started"
RUN_COMPLETED: Final = "run_completed"
RUN_FAILED: Final = "run_failed"
RUN_CANCELLED: Final = "run_cancelled"
STEP_CREATED: Final = "step_created"
STEP_STARTED: Final = "step_started"
STEP_COMPLETED: Final = "step_completed"
STEP_FAILED: Final = "step_failed"
STEP_RETRYING: Final = "step_retrying"
HOOK_CREATED: Final = "hook_created"
HOOK_RECEIVED: Final = "hook_received"
HOOK_DISPOSED: Final = "hook_disposed"
HOOK_CONFLICT: Final = "hook_conflict"
WAIT_CREATED: Final = "wait_created"
WAIT_COMPLETED: Final = "wait_completed"

EVENT_TYPES: Final = (
    RUN_CREATED,
    RUN_STARTED,
    RUN_COMPLETED,
    RUN_FAILED,
    RUN_CANCELLED,
    STEP_CREATED,
    STEP_STARTED,
    STEP_COMPLETED,
    STEP_FAILED,
    STEP_RETRYING,
    HOOK_CREATED,
    HOOK_RECEIVED,
    HOOK_DISPOSED,
    HOOK_CONFLICT,
    WAIT_CREATED,
    WAIT_COMPLETED,
)
WORLD_ONLY_EVENT_TYPES: Final = frozenset({HOOK_CONFLICT})
TERMINAL_RUN_EVENT_TYPES: Final = frozenset({RUN_COMPLETED, RUN_FAILED, RUN_CANCELLED})
RUN_EVENT_TYPES: Final = frozenset({RUN_CREATED, RUN_STARTED}) | TERMINAL_RUN_EVENT_TYPES
STEP_EVENT_TYPES: Final = frozenset({STEP_CREATED, STEP_STARTED, STEP_COMPLETED, STEP_FAILED, STEP_RETRYING})
HOOK_EVENT_TYPES: Final = frozenset({HOOK_CREATED, HOOK_RECEIVED, HOOK_DISPOSED, HOOK_CONFLICT})
WAIT_EVENT_TYPES: Final = frozenset({WAIT_CREATED, WAIT_COMPLETED})

PAYLOAD_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    RUN_CREATED: ("input",),
    RUN_COMPLETED: ("output",),
    RUN_FAILED: ("error",),
    STEP_CREATED: ("input",),
    STEP_COMPLETED: ("result",),
    STEP_FAILED: ("error",),
    STEP_RETRYING: ("error",),
    HOOK_CREATED: ("metadata",),
    HOOK_RECEIVED: ("payload",),
}

E = TypeVar("E", Event, Run, Step, Hook)


def strip_event(event: Event, resolve_data: ResolveData) -> Event:
    """The event with its payload fields removed when ``resolve_data == 'none'``."""
    fields = PAYLOAD_FIELDS.get(event.event_type)
    if resolve_data == "all" or not fields or event.event_data is None:
        return event
    data = {k: v for k, v in event.event_data.items() if k not in fields}
    return dataclasses.replace(event, event_data=data)


def strip_entity(entity: E, resolve_data: ResolveData) -> E:
    """A run, step or hook with its payload fields set to ``None`` when ``resolve_data == 'none'``."""
    if resolve_data == "all":
        return entity
    if isinstance(entity, Run):
        return dataclasses.replace(entity, input=None, output=None, error=None)
    if isinstance(entity, Step):
        return dataclasses.replace(entity, input=None, output=None, error=None)
    if isinstance(entity, Hook):
        return dataclasses.replace(entity, metadata=None)
    return strip_event(entity, resolve_data)


def strip_result(result: EventResult, resolve_data: ResolveData) -> EventResult:
    """An ``events.create`` result with its event and entities stripped like every read (RD-1)."""
    if resolve_data == "all":
        return result
    return dataclasses.replace(
        result,
        event=None if result.event is None else strip_event(result.event, resolve_data),
        run=None if result.run is None else strip_entity(result.run, resolve_data),
        step=None if result.step is None else strip_entity(result.step, resolve_data),
        hook=None if result.hook is None else strip_entity(result.hook, resolve_data),
    )
