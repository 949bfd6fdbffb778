"""Deliberately broken Worlds: each breaks exactly one rule, and the suite must catch it.

Every mutant but one is the in-memory World with one seam overridden; the
"consumer dies" mutant is the real local World with its message store wrapped,
because only a World with a durable, multi-process queue can show that bug.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from reference_worlds.local.plugin import worlds_register as local_backends
from reference_worlds.local.world import LocalWorld
from worlds_sdk import rules
from worlds_sdk.backend import WorldBackend, WorldConfig
from worlds_sdk.consumer import Delivery, MessageStore
from worlds_sdk.errors import EventNotFoundError, ValidationError, WorkflowRunNotFoundError, WorkflowWorldError
from worlds_sdk.events import strip_entity
from worlds_sdk.inspection import DeadLetter, QueueStats, check_cutoff
from worlds_sdk.models import (
    TERMINAL_RUN_STATUSES,
    Event,
    EventRequest,
    EventResult,
    Page,
    Pagination,
    ResolveData,
    Run,
    StreamInfo,
)
from worlds_sdk.queue_names import NAME_RE
from worlds_sdk.queue_options import QueueOptions

from .memory_world import MemoryStore, MemoryWorld, _Events, backend

# -- events and hooks (EV-*, HK-*) -----------------------------------------------------


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


class CreatedAtGoesBack(MemoryWorld):
    """Stamps each event a millisecond before the one it follows: created_at decreases (EV-11).

    Equal stamps are a freedom (tests/legal: coarse_clock); a decreasing one is not, since
    the runtime replays its clock from them.
    """

    def _stamp(self, last: datetime | None) -> datetime:
        return last - timedelta(milliseconds=1) if last is not None else super()._stamp(None)


class ReturnsStaleRun(MemoryWorld):
    """Returns the run as it was read before the event, not as it now stands (EV-2)."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.events = _StaleRunResult(self)


class _StaleRunResult(_Events):
    async def create(
        self, run_id: str | None, request: EventRequest, *, resolve_data: ResolveData = "all"
    ) -> EventResult:
        before = self.state.runs.get(run_id or "")
        result = await super().create(run_id, request, resolve_data=resolve_data)
        if before is None or result.run is None:
            return result
        return dataclasses.replace(result, run=strip_entity(before[1], resolve_data))


class TrustsClientRunIds(MemoryWorld):
    """Takes a client's run id on trust: no prefix, ULID or time-window check (EV-3)."""

    def _resolve_run_id(self, run_id: str | None, request: EventRequest, now: datetime) -> str:
        if request.event_type == "run_created" and run_id is not None:
            return run_id
        return super()._resolve_run_id(run_id, request, now)


class UpsertsRunCreated(MemoryWorld):
    """A duplicate run_created overwrites the run instead of conflicting (EV-4)."""

    async def _snapshot(self, run_id: str, request: EventRequest) -> rules.Snapshot:
        snapshot = await super()._snapshot(run_id, request)
        return dataclasses.replace(snapshot, run=None) if request.event_type == "run_created" else snapshot


class BootstrapsWithoutRunCreated(MemoryWorld):
    """A resilient start creates the missing run but not its synthetic run_created event (EV-6)."""

    async def _apply(self, run_id: str, effects: rules.Effects) -> None:
        if len(effects.events) > 1:
            effects = dataclasses.replace(
                effects, events=tuple(e for e in effects.events if e.event_type != "run_created")
            )
        await super()._apply(run_id, effects)


class StepsOnTerminalRuns(MemoryWorld):
    """Accepts step_created on a completed, failed or cancelled run (EV-7)."""

    async def _snapshot(self, run_id: str, request: EventRequest) -> rules.Snapshot:
        snapshot = await super()._snapshot(run_id, request)
        run = snapshot.run
        if request.event_type == "step_created" and run is not None and run.status in TERMINAL_RUN_STATUSES:
            return dataclasses.replace(snapshot, run=dataclasses.replace(run, status="running"))
        return snapshot


class IgnoresRetryAfter(MemoryWorld):
    """Lets a step start again before its retry_after (EV-8)."""

    async def _snapshot(self, run_id: str, request: EventRequest) -> rules.Snapshot:
        snapshot = await super()._snapshot(run_id, request)
        if request.event_type == "step_started" and snapshot.step is not None:
            return dataclasses.replace(snapshot, step=dataclasses.replace(snapshot.step, retry_after=None))
        return snapshot


class CompletesWaitsTwice(MemoryWorld):
    """Accepts wait_completed on a completed wait, so every racer wins (EV-9)."""

    async def _snapshot(self, run_id: str, request: EventRequest) -> rules.Snapshot:
        snapshot = await super()._snapshot(run_id, request)
        if request.event_type == "wait_completed" and snapshot.wait is not None:
            return dataclasses.replace(snapshot, wait=dataclasses.replace(snapshot.wait, status="waiting"))
        return snapshot


class IgnoresSpecVersion(MemoryWorld):
    """Drops the request's spec_version, so a run from a newer spec is accepted (EV-10)."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.events = _NoSpecVersion(self)


class _NoSpecVersion(_Events):
    async def create(
        self, run_id: str | None, request: EventRequest, *, resolve_data: ResolveData = "all"
    ) -> EventResult:
        return await super().create(run_id, dataclasses.replace(request, spec_version=None), resolve_data=resolve_data)


class ForgetsDisposedHooks(MemoryWorld):
    """Keeps no tombstone: the loser of a racing hook_disposed gets a not-found, not a 409 (HK-4)."""

    async def _snapshot(self, run_id: str, request: EventRequest) -> rules.Snapshot:
        snapshot = await super()._snapshot(run_id, request)
        if request.event_type == "hook_disposed" and snapshot.hook_disposed:
            return dataclasses.replace(snapshot, hook=None, hook_disposed=False)
        return snapshot


class HooksOfAnyRun(MemoryWorld):
    """Finds a hook by its id alone: run A can receive and dispose run B's hook (EV-12)."""

    async def _snapshot(self, run_id: str, request: EventRequest) -> rules.Snapshot:
        snapshot = await super()._snapshot(run_id, request)
        if request.event_type != "hook_created" and snapshot.hook is not None:
            return dataclasses.replace(snapshot, hook=dataclasses.replace(snapshot.hook, run_id=run_id))
        return snapshot


# -- reads (RD-1, ER-1) ----------------------------------------------------------------


class DropsEventDataUnresolved(MemoryWorld):
    """resolve_data='none' drops an event's whole event_data, metadata included (RD-1)."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.events = _NoDataWhenUnresolved(self)


class _NoDataWhenUnresolved(_Events):
    async def list(
        self, run_id: str, *, pagination: Pagination = Pagination(), resolve_data: ResolveData = "all"
    ) -> Page[Event]:
        page = await super().list(run_id, pagination=pagination, resolve_data=resolve_data)
        if resolve_data == "all":
            return page
        return dataclasses.replace(page, data=[dataclasses.replace(e, event_data=None) for e in page.data])


class EventMissIsNone(MemoryWorld):
    """events.get answers a miss with None instead of EventNotFoundError (ER-1)."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.events = _GetOrNone(self)


class _GetOrNone(_Events):
    async def get(self, run_id: str, event_id: str, *, resolve_data: ResolveData = "all") -> Event:
        try:
            return await super().get(run_id, event_id, resolve_data=resolve_data)
        except EventNotFoundError:
            return None  # type: ignore[return-value]


# -- payloads and the queue (PL-1, Q-*, QN-1) ------------------------------------------


class TruncatesAtNul(MemoryWorld):
    """Stores payload bytes as C strings: everything after a NUL byte is lost (PL-1)."""

    async def _apply(self, run_id: str, effects: rules.Effects) -> None:
        if effects.run is not None and effects.run.input:
            effects = dataclasses.replace(
                effects, run=dataclasses.replace(effects.run, input=effects.run.input.split(b"\x00", 1)[0])
            )
        await super()._apply(run_id, effects)


class DropsDollarKeys(MemoryWorld):
    """Takes event_data keys starting with "$" for its own tags and drops them (PL-1)."""

    def _append(self, events: Sequence[Event]) -> None:
        super()._append(
            [
                dataclasses.replace(e, event_data={k: v for k, v in e.event_data.items() if not k.startswith("$")})
                if e.event_data
                else e
                for e in events
            ]
        )


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


class _AttemptAlwaysOne(MemoryStore):
    async def claim(self, prefixes: Any, lease_seconds: float, limit: int) -> Sequence[Delivery]:
        return [dataclasses.replace(d, attempt=1) for d in await super().claim(prefixes, lease_seconds, limit)]


class AttemptAlwaysOne(MemoryWorld):
    """Reports attempt 1 on every delivery, redeliveries included (Q-2)."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.store = _AttemptAlwaysOne(self.state)
        self.consumer.store = self.store


class RecoversFinishedRuns(MemoryWorld):
    """start() re-enqueues every run, completed ones included (Q-6)."""

    def _needs_recovery(self, run: Run) -> bool:
        return True


class ClampsNegativeDelay(MemoryWorld):
    """Takes a negative delay_seconds as 0 instead of refusing it, as the Postgres World did (QO-1)."""

    async def queue(self, queue_name: str, message: Any, **options: Any) -> Any:
        delay = options.get("delay_seconds")
        if isinstance(delay, (int, float)) and not isinstance(delay, bool) and delay < 0:
            options["delay_seconds"] = 0
        return await super().queue(queue_name, message, **options)


class TakesEmptyIdempotencyKeyAsNone(MemoryWorld):
    """Takes an empty idempotency key as "no key" instead of refusing it (QO-1)."""

    async def queue(self, queue_name: str, message: Any, **options: Any) -> Any:
        if options.get("idempotency_key") == "":
            options["idempotency_key"] = None
        return await super().queue(queue_name, message, **options)


class MessagesForNoDeployment(MemoryWorld):
    """A message enqueued without a deployment_id is for no deployment, as the local World's were (QO-2)."""

    async def queue(self, queue_name: str, message: Any, **options: Any) -> Any:
        sent = await super().queue(queue_name, message, **options)
        if options.get("deployment_id") is None:
            self.state.messages[sent.message_id].deployment_id = None
        return sent


class RecoversForTheWorldsDeployment(MemoryWorld):
    """start() re-enqueues a run for this World's deployment, not the run's, as the local World did (Q-6)."""

    def _recovery_deployment(self, run: Run) -> str:
        return self.deployment_id


CASE_BLIND_NAME = re.compile(NAME_RE.pattern, re.DOTALL | re.IGNORECASE)


class CaseBlindQueueNames(MemoryWorld):
    """Matches queue names case-insensitively: an upper-case namespace passes (QN-1)."""

    def _check_queue_options(self, queue_name: str, **options: Any) -> QueueOptions:
        if not CASE_BLIND_NAME.match(queue_name):
            raise ValidationError("is not a queue name", field="queue_name")
        return super()._check_queue_options(queue_name.lower(), **options)


# -- a closed World (LC-1) ----------------------------------------------------------------


class ClosedWorldAnswers500(MemoryWorld):
    """Answers every call on a closed World with a bare WorkflowWorldError (500), as the Postgres World did (LC-1)."""

    def _closed_error(self) -> Exception:
        return WorkflowWorldError("this memory World is closed")


# -- streams (ST-*, MB-3) --------------------------------------------------------------


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


class StreamsNeedTheRun(MemoryWorld):
    """Refuses to write to the stream of a run it does not know (ST-2)."""

    async def write_to_stream(self, name: str, run_id: str, chunk: bytes | str) -> None:
        if run_id not in self.state.runs:
            raise WorkflowRunNotFoundError(run_id)
        await super().write_to_stream(name, run_id, chunk)


class TailIsChunkCount(MemoryWorld):
    """get_stream_info reports the number of chunks as tail_index, one past the last (MB-3, ST-1)."""

    async def get_stream_info(self, name: str, run_id: str) -> StreamInfo:
        info = await super().get_stream_info(name, run_id)
        return dataclasses.replace(info, tail_index=info.tail_index + 1)


# -- the local World, for a consumer that dies (Q-5) -----------------------------------


class _AckOnClaim:
    """A message store that deletes each message as it hands it out: no lease is left to run out."""

    def __init__(self, inner: MessageStore) -> None:
        self._inner = inner

    async def claim(self, prefixes: Sequence[str], lease_seconds: float, limit: int) -> Sequence[Delivery]:
        deliveries = await self._inner.claim(prefixes, lease_seconds, limit)
        for delivery in deliveries:
            await self._inner.ack(delivery)
        return deliveries

    async def extend_lease(self, delivery: Delivery, lease_seconds: float) -> bool:
        return await self._inner.extend_lease(delivery, lease_seconds)

    async def ack(self, delivery: Delivery) -> bool:
        return await self._inner.ack(delivery)

    async def reschedule(self, delivery: Delivery, delay_seconds: float) -> bool:
        return await self._inner.reschedule(delivery, delay_seconds)

    async def fail(self, delivery: Delivery, *, delay_seconds: float, dead_letter: bool, error: str) -> bool:
        return await self._inner.fail(delivery, delay_seconds=delay_seconds, dead_letter=dead_letter, error=error)


class AckBeforeHandling(LocalWorld):
    """Acknowledges a message when it is claimed, before the handler runs: a SIGKILLed consumer loses it (Q-5)."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        super().__init__(config)
        self._consumer.store = _AckOnClaim(self._consumer.store)
        self._consumer.hand_off = False  # every delivery through the claim above, none handed off at enqueue


def _local_mutant() -> WorldBackend:
    (local,) = local_backends()
    return dataclasses.replace(local, id="mutant-ack-before-handling", factory=AckBeforeHandling)


non_atomic_write = backend(NonAtomicWrite, "mutant-non-atomic-write")
racy_hook_token = backend(RacyHookToken, "mutant-racy-hook-token")
hooks_outlive_run = backend(HooksOutliveRun, "mutant-hooks-outlive-run")
self_conflict = backend(SelfConflict, "mutant-self-conflict")
run_started_appends_twice = backend(RunStartedAppendsTwice, "mutant-run-started-appends-twice")
events_out_of_order = backend(EventsOutOfOrder, "mutant-events-out-of-order")
created_at_goes_back = backend(CreatedAtGoesBack, "mutant-created-at-goes-back")
truncates_at_nul = backend(TruncatesAtNul, "mutant-truncates-at-nul")
drops_dollar_keys = backend(DropsDollarKeys, "mutant-drops-dollar-keys")
drops_failed_messages = backend(DropsFailedMessages, "mutant-drops-failed-messages")
ignores_idempotency_key = backend(IgnoresIdempotencyKey, "mutant-ignores-idempotency-key")
ignores_delay = backend(IgnoresDelay, "mutant-ignores-delay")
duplicates_live_chunks = backend(DuplicatesLiveChunks, "mutant-duplicates-live-chunks")
returns_stale_run = backend(ReturnsStaleRun, "mutant-returns-stale-run")
trusts_client_run_ids = backend(TrustsClientRunIds, "mutant-trusts-client-run-ids")
upserts_run_created = backend(UpsertsRunCreated, "mutant-upserts-run-created")
bootstraps_without_run_created = backend(BootstrapsWithoutRunCreated, "mutant-bootstraps-without-run-created")
steps_on_terminal_runs = backend(StepsOnTerminalRuns, "mutant-steps-on-terminal-runs")
ignores_retry_after = backend(IgnoresRetryAfter, "mutant-ignores-retry-after")
completes_waits_twice = backend(CompletesWaitsTwice, "mutant-completes-waits-twice")
ignores_spec_version = backend(IgnoresSpecVersion, "mutant-ignores-spec-version")
forgets_disposed_hooks = backend(ForgetsDisposedHooks, "mutant-forgets-disposed-hooks")
hooks_of_any_run = backend(HooksOfAnyRun, "mutant-hooks-of-any-run")
drops_event_data_unresolved = backend(DropsEventDataUnresolved, "mutant-drops-event-data-unresolved")
event_miss_is_none = backend(EventMissIsNone, "mutant-event-miss-is-none")
attempt_always_one = backend(AttemptAlwaysOne, "mutant-attempt-always-one")
recovers_finished_runs = backend(RecoversFinishedRuns, "mutant-recovers-finished-runs")
case_blind_queue_names = backend(CaseBlindQueueNames, "mutant-case-blind-queue-names")
streams_need_the_run = backend(StreamsNeedTheRun, "mutant-streams-need-the-run")
tail_is_chunk_count = backend(TailIsChunkCount, "mutant-tail-is-chunk-count")
closed_world_answers_500 = backend(ClosedWorldAnswers500, "mutant-closed-world-answers-500")
clamps_negative_delay = backend(ClampsNegativeDelay, "mutant-clamps-negative-delay")
takes_empty_idempotency_key_as_none = backend(TakesEmptyIdempotencyKeyAsNone, "mutant-takes-empty-key-as-none")
messages_for_no_deployment = backend(MessagesForNoDeployment, "mutant-messages-for-no-deployment")
recovers_for_the_worlds_deployment = backend(RecoversForTheWorldsDeployment, "mutant-recovers-for-worlds-deployment")
ack_before_handling = _local_mutant()


# -- inspection (OP-*) -----------------------------------------------------------------


class StatsCountLeasedAsReady(MemoryWorld):
    """Reports a message under a live lease as ready: an operator sees work waiting that is being done (OP-1)."""

    async def queue_stats(self) -> Sequence[QueueStats]:
        return [dataclasses.replace(s, ready=s.ready + s.leased, leased=0) for s in await super().queue_stats()]


class QuarantineForgetsTheError(MemoryWorld):
    """Keeps a quarantined message but not the reason it was parked (OP-2)."""

    async def quarantine(self, message_id: str, reason: str) -> DeadLetter:
        return await super().quarantine(message_id, "")


class RequeueLosesMessages(MemoryWorld):
    """Drops the dead letters it is asked to requeue instead of making them live again (OP-3)."""

    async def requeue(self, message_ids: Sequence[str] | None = None) -> int:
        chosen = [m for m in self.state.dead if message_ids is None or m.message_id in message_ids]
        for m in chosen:
            self.state.dead.remove(m)
        return len(chosen)


class RetentionDeletesLiveRuns(MemoryWorld):
    """Chooses runs for retention by creation time, whatever their status: live runs go too (OP-4)."""

    def _expired_runs(self, completed_before: datetime) -> list[str]:
        check_cutoff(completed_before)
        runs = sorted(self.state.runs.values(), key=lambda p: p[0])
        return [run.run_id for _, run in runs if run.created_at < completed_before]


stats_count_leased_as_ready = backend(StatsCountLeasedAsReady, "mutant-stats-count-leased-as-ready")
quarantine_forgets_the_error = backend(QuarantineForgetsTheError, "mutant-quarantine-forgets-the-error")
requeue_loses_messages = backend(RequeueLosesMessages, "mutant-requeue-loses-messages")
retention_deletes_live_runs = backend(RetentionDeletesLiveRuns, "mutant-retention-deletes-live-runs")
