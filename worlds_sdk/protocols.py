"""The World contract as structural protocols.

A third-party World need not import or inherit anything from us: any object with
these attributes and ``async`` methods is a World. Optional surfaces are separate
protocols (:class:`BatchStreamer`, :class:`EncryptingWorld`,
:class:`InspectableWorld`); a World also
*declares* what it supports as capabilities, which the conformance suite
cross-checks against behaviour, since a protocol only proves that names exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from .inspection import DeadLetter, QueueStats
from .models import (
    ChunkPage,
    Enqueued,
    Event,
    EventRequest,
    EventResult,
    Hook,
    MessageMeta,
    Page,
    Pagination,
    Reschedule,
    ResolveData,
    Run,
    RunStatus,
    Step,
    StreamInfo,
)

QueueHandler = Callable[[Any, MessageMeta], Awaitable[Reschedule | None]]
"""A queue handler: return ``None`` to acknowledge, ``Reschedule`` to see the message
again later, or raise to have it redelivered with ``attempt + 1`` after a back-off."""


class Runs(Protocol):
    async def get(self, run_id: str, *, resolve_data: ResolveData = "all") -> Run:
        """The run; :class:`~worlds_sdk.errors.WorkflowRunNotFoundError` if unknown."""
        ...

    async def list(
        self,
        *,
        workflow_name: str | None = None,
        status: RunStatus | None = None,
        pagination: Pagination = Pagination(),
        resolve_data: ResolveData = "all",
    ) -> Page[Run]:
        """Runs, newest first unless ``pagination.sort_order`` says otherwise."""
        ...


class Steps(Protocol):
    async def get(self, run_id: str | None, step_id: str, *, resolve_data: ResolveData = "all") -> Step:
        """The step; ``run_id=None`` looks the step id up across runs."""
        ...

    async def list(
        self, run_id: str, *, pagination: Pagination = Pagination(), resolve_data: ResolveData = "all"
    ) -> Page[Step]:
        """A run's steps, newest first by default."""
        ...


class Events(Protocol):
    async def create(
        self, run_id: str | None, request: EventRequest, *, resolve_data: ResolveData = "all"
    ) -> EventResult:
        """Validate, apply and append one event atomically (the only way entities change)."""
        ...

    async def get(self, run_id: str, event_id: str, *, resolve_data: ResolveData = "all") -> Event: ...

    async def list(
        self, run_id: str, *, pagination: Pagination = Pagination(), resolve_data: ResolveData = "all"
    ) -> Page[Event]:
        """A run's events in append order (ascending by default)."""
        ...

    async def list_by_correlation_id(
        self,
        correlation_id: str,
        *,
        run_id: str | None = None,
        pagination: Pagination = Pagination(),
        resolve_data: ResolveData = "all",
    ) -> Page[Event]: ...


class Hooks(Protocol):
    async def get(self, hook_id: str, *, resolve_data: ResolveData = "all") -> Hook: ...

    async def get_by_token(self, token: str, *, resolve_data: ResolveData = "all") -> Hook: ...

    async def list(
        self,
        *,
        run_id: str | None = None,
        pagination: Pagination = Pagination(),
        resolve_data: ResolveData = "all",
    ) -> Page[Hook]: ...


class Storage(Protocol):
    """Durable state: read groups plus the one write path, ``events.create``."""

    @property
    def runs(self) -> Runs: ...

    @property
    def steps(self) -> Steps: ...

    @property
    def events(self) -> Events: ...

    @property
    def hooks(self) -> Hooks: ...


class Queue(Protocol):
    """At-least-once delivery of JSON-like messages (raw ``bytes`` allowed) to handlers."""

    async def get_deployment_id(self) -> str: ...

    async def queue(
        self,
        queue_name: str,
        message: Any,
        *,
        deployment_id: str | None = None,
        idempotency_key: str | None = None,
        delay_seconds: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Enqueued: ...

    def register_handler(self, prefix: str, handler: QueueHandler) -> None:
        """Route messages whose queue name starts with ``prefix`` to ``handler`` once started."""
        ...


class Streamer(Protocol):
    """Named, append-only byte streams that live readers can follow."""

    async def write_to_stream(self, name: str, run_id: str, chunk: bytes | str) -> None: ...

    async def close_stream(self, name: str, run_id: str) -> None: ...

    def read_from_stream(self, name: str, start_index: int = 0) -> AsyncIterator[bytes]:
        """Existing chunks, then new ones as they arrive; ends when the stream is closed.

        A negative ``start_index`` counts from the current end, clamped at 0.
        """
        ...

    async def list_streams_by_run_id(self, run_id: str) -> Sequence[str]: ...

    async def get_stream_chunks(
        self, name: str, run_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> ChunkPage: ...

    async def get_stream_info(self, name: str, run_id: str) -> StreamInfo: ...


@runtime_checkable
class World(Storage, Queue, Streamer, Protocol):
    """Storage + Queue + Streamer, with a lifecycle.

    ``spec_version`` is the highest spec the World supports. ``start()`` begins
    background work (queue consumption, recovery of pending and running runs);
    ``close()`` releases everything and makes the instance unusable.
    """

    spec_version: int

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class BatchStreamer(Protocol):
    """Optional: several chunks in one write, in order."""

    async def write_to_stream_many(self, name: str, run_id: str, chunks: Sequence[bytes | str]) -> None: ...


@runtime_checkable
class EncryptingWorld(Protocol):
    """Optional: a World that encrypts payloads returns a stable 32-byte key per run."""

    async def get_encryption_key_for_run(
        self, run: Run | str, context: Mapping[str, Any] | None = None
    ) -> bytes | None: ...


@runtime_checkable
class InspectableWorld(Protocol):
    """Optional: what an operator needs in an incident, without SQL (capability ``inspection``, rules OP-*).

    Every method is safe while the World is in use by other clients.
    """

    async def queue_stats(self) -> Sequence[QueueStats]:
        """One record per queue name that has live messages or dead letters, sorted by name (OP-1)."""
        ...

    async def list_dead_letters(self, *, limit: int = 100) -> Sequence[DeadLetter]:
        """Dead letters, oldest first, at most ``limit`` (OP-2)."""
        ...

    async def quarantine(self, message_id: str, reason: str) -> DeadLetter:
        """Move a live message to the dead letters with ``reason`` as its error: park poison work (OP-2).

        An unknown id is a :class:`~worlds_sdk.errors.NotFoundError`.
        """
        ...

    async def requeue(self, message_ids: Sequence[str] | None = None) -> int:
        """Make dead letters live messages again, ready now, with their body, headers and deployment (OP-3).

        ``None`` requeues every dead letter; returns how many were requeued. An id
        that is not a dead letter is skipped, so a repeated call is harmless.
        """
        ...

    async def count_expired_runs(self, completed_before: datetime) -> int:
        """How many runs :meth:`delete_expired_runs` would delete now (OP-4); for dry runs."""
        ...

    async def delete_expired_runs(self, completed_before: datetime, *, batch_size: int = 100) -> int:
        """Delete at most ``batch_size`` terminal runs completed before the cutoff, with all they own (OP-4).

        A run's events, steps, hooks, waits and streams go with it, in one
        transaction per batch. Runs that are ``pending`` or ``running`` are never
        touched, whatever their age. Returns how many runs were deleted; call
        again until it returns 0.
        """
        ...
