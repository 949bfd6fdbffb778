"""The records of the optional inspection surface (:class:`worlds_sdk.protocols.InspectableWorld`).

An operator's first questions in an incident -- what is queued, what is stuck,
what died, what can be cleaned up -- must be answerable without SQL against one
World's schema, so the answers are typed records every inspectable World returns
alike (rules OP-1 to OP-4 in docs/spec.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import ValidationError

if TYPE_CHECKING:
    from .protocols import InspectableWorld


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    """One queue name's messages at one instant.

    ``ready`` messages are claimable now (including a message whose lease ran out),
    ``leased`` ones are held by a live claim, ``delayed`` ones become visible later.
    ``max_failures`` is the most failures (handler errors and expired leases) any
    live message of the queue has had: a high value is a message going round.
    """

    queue_name: str
    ready: int = 0
    leased: int = 0
    delayed: int = 0
    oldest_ready_seconds: float | None = None
    """Age of the oldest ready message, counted from when it became visible; ``None`` when none is ready."""
    max_failures: int = 0
    dead_letters: int = 0
    last_error: str | None = None
    """The error of the newest dead letter of this queue name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A message that failed ``max_attempts`` times, or was quarantined: kept, never dropped silently."""

    message_id: str
    queue_name: str
    message: Any
    attempt: int
    failures: int
    error: str
    dead_at: datetime


def check_count(value: object, field: str) -> None:
    """A batch size or listing limit: a positive int, else a :class:`ValidationError` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("must be a positive integer", field=field)


def check_cutoff(value: object) -> None:
    """A retention cutoff: a timezone-aware datetime (a naive one has no defined instant)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("must be a timezone-aware datetime", field="completed_before")


class ForwardsInspection:
    """A World's ``InspectableWorld`` methods, forwarded to the object in ``self._inspection``.

    The reference Worlds keep their inspection queries in a module of their own;
    this mixin spares each World the same six forwarding methods.
    """

    _inspection: InspectableWorld

    async def queue_stats(self) -> Sequence[QueueStats]:
        return await self._inspection.queue_stats()

    async def list_dead_letters(self, *, limit: int = 100) -> Sequence[DeadLetter]:
        return await self._inspection.list_dead_letters(limit=limit)

    async def quarantine(self, message_id: str, reason: str) -> DeadLetter:
        return await self._inspection.quarantine(message_id, reason)

    async def requeue(self, message_ids: Sequence[str] | None = None) -> int:
        return await self._inspection.requeue(message_ids)

    async def count_expired_runs(self, completed_before: datetime) -> int:
        return await self._inspection.count_expired_runs(completed_before)

    async def delete_expired_runs(self, completed_before: datetime, *, batch_size: int = 100) -> int:
        return await self._inspection.delete_expired_runs(completed_before, batch_size=batch_size)
