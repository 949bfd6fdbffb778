"""Deliberately broken Worlds: each breaks exactly one rule, and the suite must catch it.

Every mutant but one is the in-memory World with one seam overridden; the
"consumer dies" mutant wraps the real local World, because only a World with a
durable, multi-process queue can show that bug.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from reference_worlds.local.plugin import worlds_register as local_backends
from worlds_sdk import rules
from worlds_sdk.backend import WorldBackend, WorldConfig
from worlds_sdk.consumer import Delivery
from worlds_sdk.models import EventRequest, EventResult, MessageMeta, Page, Pagination, ResolveData
from worlds_sdk.protocols import QueueHandler, World

from .memory_world import MemoryStore, MemoryWorld, _Events, backend


class NonAtomicWrite(MemoryWorld):
    """Appends the event, yields, then changes the entity: readers see half an event (EV-1)."""

    async def _apply(self, run_id: str, effects: rules.Effects) -> None:
        self._append(effects.events)
        await asyncio.sleep(0.002)
        self._apply_entities(run_id, effects)


class RacyHookToken(MemoryWorld):
    """Checks the token, yields, then inserts: concurrent creators all win (HK-1)."""

    async def _snapshot(self, run_id: str, request: EventRequest) -> rules.Snapshot:
        snapshot = await super()._snapshot(run_id, request)
        if request.event_type == "hook_created":
            await asyncio.sleep(0.002)
        return snapshot


class HooksOutliveRun(MemoryWorld):
    """Forgets to dispose hooks and waits when the run ends (HK-3)."""

    async def _apply(self, run_id: str, effects: rules.Effects) -> None:
        await super()._apply(run_id, dataclasses.replace(effects, dispose_run_children=False))


class SelfConflict(MemoryWorld):
    """Does not recognise a re-sent hook_created and reports a conflict with itself (HK-2)."""

    async def _snapshot(self, run_id: str, request: EventRequest) -> rules.Snapshot:
        snapshot = await super()._snapshot(run_id, request)
        if request.event_type == "hook_created":
            return dataclasses.replace(snapshot, hook=None, hook_disposed=False)
        return snapshot


class RunStartedAppendsTwice(MemoryWorld):
    """Appends a run_started event even when the run is already running (EV-5)."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.events = _AlwaysAppendStarted(self)


class _AlwaysAppendStarted(_Events):
    async def create(
        self, run_id: str | None, request: EventRequest, *, resolve_data: ResolveData = "all"
    ) -> EventResult:
        result = await super().create(run_id, request, resolve_data=resolve_data)
        if result.event is None and result.run is not None:
            event = dataclasses.replace(
                self.state.events[-1][1],
                run_id=result.run.run_id,
                event_type="run_started",
                event_id=f"evnt_dup{self.state.seq}",
                correlation_id=None,
                event_data=None,
            )
            self.world._append([event])
        return result


class EventsOutOfOrder(MemoryWorld):
    """Lists events by correlation id instead of append order (EV-11)."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.events = _SortedByCorrelation(self)


class _SortedByCorrelation(_Events):
    async def list(
        self, run_id: str, *, pagination: Pagination = Pagination(), resolve_data: ResolveData = "all"
    ) -> Page[Any]:
        page = await super().list(run_id, pagination=pagination, resolve_data=resolve_data)
        return dataclasses.replace(page, data=sorted(page.data, key=lambda e: e.correlation_id or ""))


class TruncatesAtNul(MemoryWorld):
    """Stores payload bytes as C strings: everything after a NUL byte is lost (PL-1)."""

    async def _apply(self, run_id: str, effects: rules.Effects) -> None:
        if effects.run is not None and effects.run.input:
            effects = dataclasses.replace(
                effects, run=dataclasses.replace(effects.run, input=effects.run.input.split(b"\x00", 1)[0])
            )
        await super()._apply(run_id, effects)


class _AckOnFailure(MemoryStore):
    async def fail(self, delivery: Delivery, *, delay_seconds: float, dead_letter: bool, error: str) -> bool:
        return await self.ack(delivery)


class DropsFailedMessages(MemoryWorld):
    """Acknowledges a message whose handler raised instead of redelivering it (Q-1)."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.store = _AckOnFailure(self.state)
        self.consumer.store = self.store


class IgnoresIdempotencyKey(MemoryWorld):
    """Enqueues a second message for a repeated idempotency key (Q-3)."""

    async def queue(self, queue_name: str, message: Any, **options: Any) -> Any:
        options.pop("idempotency_key", None)
        return await super().queue(queue_name, message, **options)


class IgnoresDelay(MemoryWorld):
    """Delivers delayed messages at once (Q-4)."""

    async def queue(self, queue_name: str, message: Any, **options: Any) -> Any:
        options.pop("delay_seconds", None)
        return await super().queue(queue_name, message, **options)


class DuplicatesLiveChunks(MemoryWorld):
    """Hands a live reader every chunk written after it started twice (ST-1)."""

    def read_from_stream(self, name: str, start_index: int = 0) -> AsyncIterator[bytes]:
        return self._doubled(name, start_index)

    async def _doubled(self, name: str, start_index: int) -> AsyncIterator[bytes]:
        existing = len(self.state.streams.get(name, ("", [], False))[1])
        index = 0
        async for chunk in super().read_from_stream(name, start_index):
            yield chunk
            if index >= existing:
                yield chunk
            index += 1


class _AckBeforeHandling:
    """Wraps a World so a handler's message is acknowledged before the handler runs (Q-5)."""

    def __init__(self, inner: World) -> None:
        self._inner = inner
        self._tasks: set[asyncio.Task[Any]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def register_handler(self, prefix: str, handler: QueueHandler) -> None:
        async def ack_first(message: Any, meta: MessageMeta) -> None:
            task = asyncio.create_task(handler(message, meta))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._inner.register_handler(prefix, ack_first)


def _local_wrapped() -> WorldBackend:
    (local,) = local_backends()
    return dataclasses.replace(
        local, id="mutant-ack-before-handling", factory=lambda config: _AckBeforeHandling(local.factory(config))
    )  # type: ignore[arg-type,return-value]


non_atomic_write = backend(NonAtomicWrite, "mutant-non-atomic-write")
racy_hook_token = backend(RacyHookToken, "mutant-racy-hook-token")
hooks_outlive_run = backend(HooksOutliveRun, "mutant-hooks-outlive-run")
self_conflict = backend(SelfConflict, "mutant-self-conflict")
run_started_appends_twice = backend(RunStartedAppendsTwice, "mutant-run-started-appends-twice")
events_out_of_order = backend(EventsOutOfOrder, "mutant-events-out-of-order")
truncates_at_nul = backend(TruncatesAtNul, "mutant-truncates-at-nul")
drops_failed_messages = backend(DropsFailedMessages, "mutant-drops-failed-messages")
ignores_idempotency_key = backend(IgnoresIdempotencyKey, "mutant-ignores-idempotency-key")
ignores_delay = backend(IgnoresDelay, "mutant-ignores-delay")
duplicates_live_chunks = backend(DuplicatesLiveChunks, "mutant-duplicates-live-chunks")
ack_before_handling = _local_wrapped()
