"""The entities and records a World stores and returns.

All records are frozen dataclasses: a World hands out values, never live objects
a caller could mutate behind the event log's back. Payload fields (``input``,
``output``, ``metadata``, event payloads) are opaque ``bytes`` and must round-trip
byte-exact; ``None`` means "absent" or, with ``resolve_data='none'``, "stripped".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

RunStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
StepStatus = Literal["pending", "running", "completed", "failed"]
WaitStatus = Literal["waiting", "completed"]
ResolveData = Literal["all", "none"]
SortOrder = Literal["asc", "desc"]

TERMINAL_RUN_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
TERMINAL_STEP_STATUSES: frozenset[str] = frozenset({"completed", "failed"})

MAX_PAGE_LIMIT = 1000
DEFAULT_PAGE_LIMIT = 100

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class StructuredError:
    """An error as the runtime reports it: a message, optionally a stack and a code."""

    message: str
    stack: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """A workflow run, materialised from its events."""

    run_id: str
    status: RunStatus
    deployment_id: str
    workflow_name: str
    spec_version: int
    input: bytes | None
    created_at: datetime
    updated_at: datetime
    execution_context: Mapping[str, Any] | None = None
    output: bytes | None = None
    error: StructuredError | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One step of a run, keyed by ``(run_id, step_id)``."""

    run_id: str
    step_id: str
    step_name: str
    status: StepStatus
    input: bytes | None
    attempt: int
    created_at: datetime
    updated_at: datetime
    spec_version: int
    output: bytes | None = None
    error: StructuredError | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    retry_after: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hook:
    """A live hook: while it exists, its token belongs to it alone."""

    hook_id: str
    run_id: str
    token: str
    created_at: datetime
    spec_version: int
    metadata: bytes | None = None
    is_webhook: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Wait:
    """A sleep of a run, keyed by ``(run_id, wait_id)``."""

    run_id: str
    wait_id: str
    status: WaitStatus
    resume_at: datetime
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One entry of a run's append-only log."""

    run_id: str
    event_id: str
    event_type: str
    created_at: datetime
    spec_version: int
    correlation_id: str | None = None
    event_data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRequest:
    """What a caller asks ``events.create`` to append."""

    event_type: str
    correlation_id: str | None = None
    event_data: Mapping[str, Any] | None = None
    spec_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventResult:
    """What ``events.create`` returns: the appended event and the entity as it now stands.

    ``event`` is ``None`` only when nothing was appended (an idempotent ``run_started``).
    """

    event: Event | None
    run: Run | None = None
    step: Step | None = None
    hook: Hook | None = None
    wait: Wait | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pagination:
    """``cursor`` is opaque and means "strictly after"; ``sort_order=None`` is the list's default."""

    limit: int = DEFAULT_PAGE_LIMIT
    cursor: str | None = None
    sort_order: SortOrder | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    """One page of a list; pass ``cursor`` back to get the next."""

    data: Sequence[T]
    cursor: str | None
    has_more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamChunk:
    index: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkPage:
    """A snapshot page of a stream; ``done`` says the stream is closed."""

    data: Sequence[StreamChunk]
    cursor: str | None
    has_more: bool
    done: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamInfo:
    """``tail_index`` is the index of the last chunk, -1 when the stream is empty."""

    tail_index: int
    done: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageMeta:
    """What a queue handler learns about the delivery it is processing.

    ``deployment_id`` is the deployment the message is for: the one given to
    ``queue()``, else the enqueueing World's own; a recovery message (Q-6) is
    for the run's deployment, whose code alone can replay the run.
    """

    message_id: str
    queue_name: str
    attempt: int
    headers: Mapping[str, str] = field(default_factory=dict)
    deployment_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reschedule:
    """A handler's answer meaning "deliver this same message again in ``timeout_seconds``"."""

    timeout_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Enqueued:
    """The receipt of ``queue()``: the id is stable across redeliveries."""

    message_id: str
