"""A small, correct, single-process World kept in memory, built only from the SDK's shared parts.

``rules.decide`` decides every event, :class:`~worlds_sdk.consumer.Consumer`
delivers the queue over an in-memory ``MessageStore``, and ``follow_stream``
serves live stream reads -- which shows how little a World author must write.
It passes the whole single-process conformance suite, so it is two things:

- the start of ``worlds new NAME --template memory``: an author subclasses
  :class:`MemoryWorld` and replaces its storage one seam at a time, staying green;
- the base of the suite's mutants (``tests/mutants``), each of which overrides one
  seam to break one rule.

The seams: ``_snapshot`` (what ``rules.decide`` sees, read atomically) and
``_apply`` (write its effects atomically) for events; ``store`` (any
``MessageStore``) and ``queue`` for the queue; ``write_to_stream``,
``close_stream`` and ``read_slice`` for streams; ``runs``/``steps``/``events``/
``hooks`` for reads; ``_resolve_run_id``, ``_needs_recovery``,
``_recovery_deployment``, ``_closed_error``, ``_check_queue_options`` and ``_stamp`` for the
smaller rules. World objects opened with the same
config ``name`` share one state, as two clients of one database would; the state
lives in this process only, so the World declares no ``multi_process``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import uuid4

from . import codec, ids, rules
from .backend import WorldBackend, WorldConfig
from .capabilities import Capability
from .consumer import Backoff, Consumer, Delivery
from .errors import (
    EventNotFoundError,
    HookNotFoundError,
    NotFoundError,
    StepNotFoundError,
    ValidationError,
    WorkflowRunNotFoundError,
    WorldUnavailableError,
)
from .events import strip_entity, strip_event, strip_result
from .inspection import DeadLetter, QueueStats, check_count, check_cutoff
from .models import (
    TERMINAL_RUN_STATUSES,
    ChunkPage,
    Enqueued,
    Event,
    EventRequest,
    EventResult,
    Hook,
    Page,
    Pagination,
    ResolveData,
    Run,
    SortOrder,
    Step,
    StreamChunk,
    StreamInfo,
    Wait,
)
from .pagination import check_limit, sort_order
from .protocols import QueueHandler
from .queue_names import check_queue_prefix, workflow_queue
from .queue_options import QueueOptions, check_queue_options
from .streaming import StreamSlice, follow_stream

T = TypeVar("T")


@dataclass
class Message:
    message_id: str
    queue_name: str
    body: str
    headers: Mapping[str, str]
    deployment_id: str | None
    idempotency_key: str | None
    visible_at: float
    attempt: int = 0
    failures: int = 0
    claim_id: str | None = None
    error: str = ""
    dead_at: datetime | None = None


@dataclass
class State:
    seq: int = 0
    runs: dict[str, tuple[int, Run]] = field(default_factory=dict)
    steps: dict[tuple[str, str], tuple[int, Step]] = field(default_factory=dict)
    hooks: dict[str, tuple[int, Hook]] = field(default_factory=dict)
    disposed: dict[str, Hook] = field(default_factory=dict)
    waits: dict[tuple[str, str], Wait] = field(default_factory=dict)
    events: list[tuple[int, Event]] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)
    dead: list[Message] = field(default_factory=list)
    streams: dict[str, tuple[str, list[bytes], bool]] = field(default_factory=dict)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


STATES: dict[str, State] = {}


def page(items: Sequence[tuple[int, T]], pagination: Pagination, default: SortOrder) -> Page[T]:
    """Keyset pagination over (seq, item) pairs; the cursor is the last seq returned."""
    limit = check_limit(pagination.limit)
    desc = sort_order(pagination, default) == "desc"
    ordered = sorted(items, key=lambda p: p[0], reverse=desc)
    if pagination.cursor is not None:
        if not pagination.cursor.isdigit():
            raise ValidationError("is not a cursor this World returned", field="cursor")
        c = int(pagination.cursor)
        ordered = [p for p in ordered if (p[0] < c if desc else p[0] > c)]
    chosen = ordered[:limit]
    more = len(ordered) > len(chosen)
    return Page(data=[p[1] for p in chosen], cursor=str(chosen[-1][0]) if chosen else pagination.cursor, has_more=more)


class MemoryWorld:
    """The in-memory World; config ``{"name": …}`` names the shared state to open."""

    spec_version = 3
    deployment_id = "memory"
    """What ``get_deployment_id()`` answers and what a message carries when ``queue()`` names no deployment."""

    def __init__(self, config: WorldConfig) -> None:
        self._state = STATES.setdefault(str(config["name"]), State())
        self._closed = False
        self.runs, self.steps, self.events, self.hooks = _Runs(self), _Steps(self), _Events(self), _Hooks(self)
        self.store = MemoryStore(self._state)
        self.consumer = Consumer(self.store, lease_seconds=2, poll_interval=0.02, backoff=Backoff(initial=0.05))

    @property
    def state(self) -> State:
        """The shared state, reachable only while the World is open: every call after ``close()`` fails (LC-1)."""
        if self._closed:
            raise self._closed_error()
        return self._state

    # -- seams a mutant overrides -----------------------------------------------------

    def _resolve_run_id(self, run_id: str | None, request: EventRequest, now: datetime) -> str:
        return rules.resolve_run_id(run_id, request, now)

    async def _snapshot(self, run_id: str, request: EventRequest) -> rules.Snapshot:
        s, corr = self.state, request.correlation_id or ""
        token = rules.requested_token(request)
        holder = next((h for _, h in s.hooks.values() if h.token == token), None) if token else None
        return rules.Snapshot(
            run=s.runs[run_id][1] if run_id in s.runs else None,
            step=s.steps[(run_id, corr)][1] if (run_id, corr) in s.steps else None,
            hook=s.hooks[corr][1] if corr in s.hooks else s.disposed.get(corr),
            hook_disposed=corr in s.disposed,
            token_holder=holder,
            wait=s.waits.get((run_id, corr)),
        )

    async def _apply(self, run_id: str, effects: rules.Effects) -> None:
        """All effects without an await in between: atomic for every reader on this loop."""
        self._append(effects.events)
        self._apply_entities(run_id, effects)

    def _append(self, events: Sequence[Event]) -> None:
        self.state.events.extend((self.state.next_seq(), e) for e in events)

    def _apply_entities(self, run_id: str, effects: rules.Effects) -> None:
        s = self.state
        if effects.run is not None:
            s.runs[run_id] = (s.runs[run_id][0] if run_id in s.runs else s.next_seq(), effects.run)
        if effects.step is not None:
            key = (run_id, effects.step.step_id)
            s.steps[key] = (s.steps[key][0] if key in s.steps else s.next_seq(), effects.step)
        if effects.hook is not None:
            s.hooks[effects.hook.hook_id] = (s.next_seq(), effects.hook)
        if effects.wait is not None:
            s.waits[(run_id, effects.wait.wait_id)] = effects.wait
        if effects.disposed_hook_id is not None:
            s.disposed[effects.disposed_hook_id] = s.hooks.pop(effects.disposed_hook_id)[1]
        if effects.dispose_run_children:
            for hook_id in [k for k, (_, h) in s.hooks.items() if h.run_id == run_id]:
                s.disposed[hook_id] = s.hooks.pop(hook_id)[1]
            for key in [k for k in s.waits if k[0] == run_id]:
                s.waits.pop(key)

    # -- lifecycle and queue ----------------------------------------------------------

    async def start(self) -> None:
        for _, run in list(self.state.runs.values()):
            if self._needs_recovery(run):
                await self.queue(
                    workflow_queue(run.workflow_name),
                    {"run_id": run.run_id},
                    deployment_id=self._recovery_deployment(run),
                    idempotency_key=f"recover:{run.run_id}",
                )
        self.consumer.start()

    def _needs_recovery(self, run: Run) -> bool:
        """Q-6: ``start()`` re-enqueues the workflow of every unfinished run."""
        return run.status in ("pending", "running")

    def _recovery_deployment(self, run: Run) -> str:
        """Q-6: a recovery message is for the run's deployment, whose code alone can replay it."""
        return run.deployment_id

    def _check_queue_options(self, queue_name: str, **options: Any) -> QueueOptions:
        """QN-1, QO-1, QO-2: the SDK's one check of a ``queue()`` call."""
        return check_queue_options(queue_name, **options, world_deployment_id=self.deployment_id)

    def _closed_error(self) -> Exception:
        return WorldUnavailableError("this memory World is closed")

    def _stamp(self, last: datetime | None) -> datetime:
        """The time the next events are stamped with: never before ``last``, the newest event's (EV-11)."""
        now = datetime.now(UTC)
        return now if last is None or now > last else last + timedelta(microseconds=1)

    async def close(self) -> None:
        await self.consumer.stop(grace_seconds=1)
        self._closed = True

    async def get_deployment_id(self) -> str:
        return self.deployment_id

    def register_handler(self, prefix: str, handler: QueueHandler) -> None:
        if self._closed:
            raise self._closed_error()
        check_queue_prefix(prefix)
        self.consumer.register(prefix, handler)

    async def queue(
        self,
        queue_name: str,
        message: Any,
        *,
        deployment_id: str | None = None,
        idempotency_key: str | None = None,
        delay_seconds: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Enqueued:
        options = self._check_queue_options(
            queue_name,
            deployment_id=deployment_id,
            idempotency_key=idempotency_key,
            delay_seconds=delay_seconds,
            headers=headers,
        )
        for m in self.state.messages.values():
            if options.idempotency_key is not None and m.idempotency_key == options.idempotency_key:
                return Enqueued(message_id=m.message_id)
        msg = Message(
            ids.new_id("msg"),
            queue_name,
            codec.dumps(message),
            options.headers,
            options.deployment_id,
            options.idempotency_key,
            time.monotonic() + options.delay_seconds,
        )
        self.state.messages[msg.message_id] = msg
        return Enqueued(message_id=msg.message_id)

    # -- inspection (OP-1 to OP-4) ----------------------------------------------------

    async def queue_stats(self) -> Sequence[QueueStats]:
        now, names = time.monotonic(), sorted({m.queue_name for m in [*self.state.messages.values(), *self.state.dead]})
        stats = []
        for name in names:
            live = [m for m in self.state.messages.values() if m.queue_name == name]
            dead = [m for m in self.state.dead if m.queue_name == name]
            ready = [m for m in live if m.visible_at <= now]
            stats.append(
                QueueStats(
                    queue_name=name,
                    ready=len(ready),
                    leased=sum(1 for m in live if m.visible_at > now and m.claim_id is not None),
                    delayed=sum(1 for m in live if m.visible_at > now and m.claim_id is None),
                    oldest_ready_seconds=max((now - m.visible_at for m in ready), default=None),
                    max_failures=max((m.failures for m in live), default=0),
                    dead_letters=len(dead),
                    last_error=dead[-1].error if dead else None,
                )
            )
        return stats

    async def list_dead_letters(self, *, limit: int = 100) -> Sequence[DeadLetter]:
        check_count(limit, "limit")
        return [_dead_letter(m) for m in self.state.dead[:limit]]

    async def quarantine(self, message_id: str, reason: str) -> DeadLetter:
        m = self.state.messages.pop(message_id, None)
        if m is None:
            raise NotFoundError(f"no message has id {message_id!r}")
        m.claim_id, m.error, m.dead_at = None, reason, datetime.now(UTC)
        self.state.dead.append(m)
        return _dead_letter(m)

    async def requeue(self, message_ids: Sequence[str] | None = None) -> int:
        chosen = [m for m in self.state.dead if message_ids is None or m.message_id in message_ids]
        for m in chosen:
            self.state.dead.remove(m)
            m.failures, m.idempotency_key, m.visible_at = 0, None, time.monotonic()
            self.state.messages[m.message_id] = m
        return len(chosen)

    def _expired_runs(self, completed_before: datetime) -> list[str]:
        check_cutoff(completed_before)
        runs = sorted(self.state.runs.values(), key=lambda p: p[0])
        return [
            run.run_id
            for _, run in runs
            if run.status in TERMINAL_RUN_STATUSES
            and run.completed_at is not None
            and run.completed_at < completed_before
        ]

    async def count_expired_runs(self, completed_before: datetime) -> int:
        return len(self._expired_runs(completed_before))

    async def delete_expired_runs(self, completed_before: datetime, *, batch_size: int = 100) -> int:
        check_count(batch_size, "batch_size")
        doomed = set(self._expired_runs(completed_before)[:batch_size])
        s = self.state
        s.events = [p for p in s.events if p[1].run_id not in doomed]
        s.steps = {k: v for k, v in s.steps.items() if k[0] not in doomed}
        s.hooks = {k: v for k, v in s.hooks.items() if v[1].run_id not in doomed}
        s.waits = {k: v for k, v in s.waits.items() if k[0] not in doomed}
        s.streams = {k: v for k, v in s.streams.items() if v[0] not in doomed}
        for run_id in doomed:
            del s.runs[run_id]
        return len(doomed)

    # -- streams ----------------------------------------------------------------------

    async def write_to_stream(self, name: str, run_id: str, chunk: bytes | str) -> None:
        data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
        run, chunks, done = self.state.streams.get(name, (run_id, [], False))
        self.state.streams[name] = (run, [*chunks, data], done)

    async def close_stream(self, name: str, run_id: str) -> None:
        run, chunks, _ = self.state.streams.get(name, (run_id, [], False))
        self.state.streams[name] = (run, chunks, True)

    async def read_slice(self, name: str, start_index: int, limit: int) -> StreamSlice:
        _, chunks, done = self.state.streams.get(name, ("", [], False))
        sel = [StreamChunk(index=i, data=chunks[i]) for i in range(start_index, min(len(chunks), start_index + limit))]
        return StreamSlice(chunks=sel, tail_index=len(chunks) - 1, done=done)

    def read_from_stream(self, name: str, start_index: int = 0) -> AsyncIterator[bytes]:
        return follow_stream(self, name, start_index, poll_interval=0.01)

    async def list_streams_by_run_id(self, run_id: str) -> list[str]:
        return [n for n, (r, _, _) in self.state.streams.items() if r == run_id]

    async def get_stream_chunks(
        self, name: str, run_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> ChunkPage:
        start = int(cursor) if cursor else 0
        sl = await self.read_slice(name, start, limit)
        more = sl.tail_index >= start + len(sl.chunks)
        return ChunkPage(
            data=sl.chunks,
            cursor=str(start + len(sl.chunks)) if more else None,
            has_more=more,
            done=sl.done and not more,
        )

    async def get_stream_info(self, name: str, run_id: str) -> StreamInfo:
        sl = await self.read_slice(name, 0, 0)
        return StreamInfo(tail_index=sl.tail_index, done=sl.done)


def _dead_letter(m: Message) -> DeadLetter:
    assert m.dead_at is not None
    return DeadLetter(
        message_id=m.message_id,
        queue_name=m.queue_name,
        message=codec.loads(m.body),
        attempt=m.attempt,
        failures=m.failures,
        error=m.error,
        dead_at=m.dead_at,
    )


class MemoryStore:
    """The in-memory ``MessageStore``: leases by claim id and visibility time."""

    def __init__(self, state: State) -> None:
        self.state = state

    pickup_lag = 0.0
    """Seconds after a message is due before ``claim`` hands it out: 0, at once. Q-4 forbids
    early delivery, never late; a store with a lag still counts the message as ready (OP-1)."""

    async def claim(self, prefixes: Sequence[str], lease_seconds: float, limit: int) -> Sequence[Delivery]:
        now = time.monotonic()
        due_by = now - self.pickup_lag
        claimed: list[Delivery] = []
        for m in sorted(self.state.messages.values(), key=lambda m: m.visible_at):
            if len(claimed) == limit:
                break
            if m.visible_at <= due_by and m.queue_name.startswith(tuple(prefixes)):
                if m.claim_id is not None:  # the holder's lease ran out: that delivery failed
                    m.failures += 1
                m.attempt += 1
                m.claim_id = uuid4().hex
                m.visible_at = now + lease_seconds
                claimed.append(
                    Delivery(
                        message_id=m.message_id,
                        queue_name=m.queue_name,
                        message=codec.loads(m.body),
                        attempt=m.attempt,
                        failures=m.failures,
                        claim_id=m.claim_id,
                        headers=m.headers,
                        deployment_id=m.deployment_id,
                    )
                )
        return claimed

    def _current(self, d: Delivery) -> Message | None:
        m = self.state.messages.get(d.message_id)
        return m if m is not None and m.claim_id == d.claim_id else None

    async def extend_lease(self, delivery: Delivery, lease_seconds: float) -> bool:
        m = self._current(delivery)
        if m is not None:
            m.visible_at = time.monotonic() + lease_seconds
        return m is not None

    async def ack(self, delivery: Delivery) -> bool:
        return self.state.messages.pop(delivery.message_id, None) is not None if self._current(delivery) else False

    async def reschedule(self, delivery: Delivery, delay_seconds: float) -> bool:
        m = self._current(delivery)
        if m is not None:
            m.claim_id, m.visible_at = None, time.monotonic() + delay_seconds
        return m is not None

    async def fail(self, delivery: Delivery, *, delay_seconds: float, dead_letter: bool, error: str) -> bool:
        m = self._current(delivery)
        if m is None:
            return False
        m.failures += 1
        m.claim_id, m.visible_at = None, time.monotonic() + delay_seconds
        if dead_letter:
            m.error, m.dead_at = error, datetime.now(UTC)
            self.state.dead.append(self.state.messages.pop(m.message_id))
        return True


class _Group:
    def __init__(self, world: MemoryWorld) -> None:
        self.world = world

    @property
    def state(self) -> State:
        return self.world.state


class _Runs(_Group):
    async def get(self, run_id: str, *, resolve_data: ResolveData = "all") -> Run:
        if run_id not in self.state.runs:
            raise WorkflowRunNotFoundError(run_id)
        return strip_entity(self.state.runs[run_id][1], resolve_data)

    async def list(
        self,
        *,
        workflow_name: str | None = None,
        status: str | None = None,
        pagination: Pagination = Pagination(),
        resolve_data: ResolveData = "all",
    ) -> Page[Run]:
        items = [
            (s, strip_entity(r, resolve_data))
            for s, r in self.state.runs.values()
            if workflow_name in (None, r.workflow_name) and status in (None, r.status)
        ]
        return page(items, pagination, "desc")


class _Steps(_Group):
    async def get(self, run_id: str | None, step_id: str, *, resolve_data: ResolveData = "all") -> Step:
        for (r, s), (_, step) in self.state.steps.items():
            if s == step_id and run_id in (None, r):
                return strip_entity(step, resolve_data)
        raise StepNotFoundError(step_id)

    async def list(
        self, run_id: str, *, pagination: Pagination = Pagination(), resolve_data: ResolveData = "all"
    ) -> Page[Step]:
        items = [(q, strip_entity(s, resolve_data)) for (r, _), (q, s) in self.state.steps.items() if r == run_id]
        return page(items, pagination, "desc")


class _Events(_Group):
    async def create(
        self, run_id: str | None, request: EventRequest, *, resolve_data: ResolveData = "all"
    ) -> EventResult:
        now = self.world._stamp(self.state.events[-1][1].created_at if self.state.events else None)
        rid = self.world._resolve_run_id(run_id, request, now)
        snapshot = await self.world._snapshot(rid, request)
        effects = rules.decide(rid, request, snapshot, now=now, world_spec_version=self.world.spec_version)
        await self.world._apply(rid, effects)
        return strip_result(effects.result, resolve_data)

    async def get(self, run_id: str, event_id: str, *, resolve_data: ResolveData = "all") -> Event:
        for _, e in self.state.events:
            if e.run_id == run_id and e.event_id == event_id:
                return strip_event(e, resolve_data)
        raise EventNotFoundError(event_id)

    async def list(
        self, run_id: str, *, pagination: Pagination = Pagination(), resolve_data: ResolveData = "all"
    ) -> Page[Event]:
        items = [(s, strip_event(e, resolve_data)) for s, e in self.state.events if e.run_id == run_id]
        return page(items, pagination, "asc")

    async def list_by_correlation_id(
        self,
        correlation_id: str,
        *,
        run_id: str | None = None,
        pagination: Pagination = Pagination(),
        resolve_data: ResolveData = "all",
    ) -> Page[Event]:
        items = [
            (s, strip_event(e, resolve_data))
            for s, e in self.state.events
            if e.correlation_id == correlation_id and run_id in (None, e.run_id)
        ]
        return page(items, pagination, "asc")


class _Hooks(_Group):
    async def get(self, hook_id: str, *, resolve_data: ResolveData = "all") -> Hook:
        if hook_id not in self.state.hooks:
            raise HookNotFoundError(hook_id)
        return strip_entity(self.state.hooks[hook_id][1], resolve_data)

    async def get_by_token(self, token: str, *, resolve_data: ResolveData = "all") -> Hook:
        for _, h in self.state.hooks.values():
            if h.token == token:
                return strip_entity(h, resolve_data)
        raise HookNotFoundError(token)

    async def list(
        self, *, run_id: str | None = None, pagination: Pagination = Pagination(), resolve_data: ResolveData = "all"
    ) -> Page[Hook]:
        items = [(s, strip_entity(h, resolve_data)) for s, h in self.state.hooks.values() if run_id in (None, h.run_id)]
        return page(items, pagination, "asc")


class MemorySandbox:
    """Each instance is a fresh, uniquely named state, dropped when the instance ends."""

    @contextmanager
    def instance(self) -> Iterator[WorldConfig]:
        name = uuid4().hex
        try:
            yield {"name": name}
        finally:
            STATES.pop(name, None)


@contextmanager
def memory_sandbox(settings: WorldConfig) -> Iterator[MemorySandbox]:
    """A ``WorldBackend.sandbox`` for in-memory Worlds (no settings: nothing to start)."""
    yield MemorySandbox()


CAPABILITIES = frozenset({Capability.DELAYED_DELIVERY, Capability.INSPECTION})
"""What the in-memory World keeps beyond the baseline: one process only, nothing survives a restart."""


def backend(world_class: type[MemoryWorld], name: str, *, description: str = "") -> WorldBackend:
    """A backend for ``world_class`` (:class:`MemoryWorld` or a subclass) under id ``name``."""
    return WorldBackend(
        id=name,
        factory=world_class,
        sandbox=memory_sandbox,
        spec_versions=frozenset({world_class.spec_version}),
        capabilities=CAPABILITIES,
        description=description or "an in-memory World (worlds_sdk.memory)",
    )


memory = backend(MemoryWorld, "memory")
