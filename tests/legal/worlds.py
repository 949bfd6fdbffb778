"""Legal variants: Worlds that each use one freedom the contract grants, so the suite must pass them.

They are the mutants' counterpart (tests/mutants/worlds.py): a mutant breaks a
rule and must fail, a legal variant bends only what docs/spec.md leaves open and
must pass. Each is a small wrapper over the in-memory World or, where the freedom
only shows with several processes or a durable queue, over the local World.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from conformance.proxy import CallProxy
from reference_worlds.local.plugin import worlds_register as local_backends
from reference_worlds.local.world import LocalWorld
from worlds_sdk.backend import WorldBackend, WorldConfig
from worlds_sdk.consumer import Delivery, MessageStore
from worlds_sdk.models import ChunkPage, Page, Pagination

from ..mutants.memory_world import MemoryStore, MemoryWorld, backend

# -- the queue: at-least-once means duplicates (Q-1) ------------------------------------


class _LosesFirstAck:
    """A message store that loses the ack of a message's first delivery: it comes again after ``delay``.

    A lost ack, a lease race or a broker's redelivery do exactly this; Q-1 allows
    it (duplicates are allowed), Q-2 only asks that the attempt count up.
    """

    def __init__(self, inner: MessageStore, delay: float) -> None:
        self._inner = inner
        self._delay = delay

    async def ack(self, delivery: Delivery) -> bool:
        if delivery.attempt == 1:
            return await self._inner.reschedule(delivery, self._delay)
        return await self._inner.ack(delivery)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class DeliversEveryMessageTwice(LocalWorld):
    """Every message acked on its first delivery is delivered once more, at once."""

    redelivery_delay = 0.0

    def __init__(self, config: WorldConfig | None = None) -> None:
        super().__init__(config)
        self._consumer.store = _LosesFirstAck(self._consumer.store, self.redelivery_delay)  # type: ignore[assignment]


class RedeliversAfterAck(DeliversEveryMessageTwice):
    """An acked message comes back a second later, while a test watches for a second delivery stream."""

    redelivery_delay = 1.0


LATE = 0.3
"""Seconds every delivery comes after it was due: Q-4 forbids early, never late."""


class _LateStore(MemoryStore):
    pickup_lag = LATE


class DeliversLate(MemoryWorld):
    """Delivers every message, delayed, rescheduled or not, ``LATE`` seconds after it is due
    (as a broker that polls would); its statistics still count a due message as ready."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.store = _LateStore(self.state)
        self.consumer.store = self.store


# -- reads: short pages, opaque cursors, a default order left open ---------------------

PAGE_CAP = 3
"""The most items a page of the short-pages World holds, whatever ``limit`` asks (§1: limit is an upper bound)."""


def _hide(cursor: str | None) -> str | None:
    return None if cursor is None else base64.urlsafe_b64encode(f"page:{cursor}".encode()).decode()


def _reveal(cursor: str | None) -> str | None:
    return None if cursor is None else base64.urlsafe_b64decode(cursor).decode().removeprefix("page:")


class _ShortPages:
    """A storage group whose lists return at most ``PAGE_CAP`` items, with has_more and an opaque cursor."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name not in ("list", "list_by_correlation_id"):
            return value

        async def short(*args: Any, pagination: Pagination = Pagination(), **kwargs: Any) -> Page[Any]:
            limit = pagination.limit if pagination.limit > 1000 else min(pagination.limit, PAGE_CAP)
            inner = dataclasses.replace(pagination, limit=limit, cursor=_reveal(pagination.cursor))
            page = await value(*args, pagination=inner, **kwargs)
            return dataclasses.replace(page, cursor=_hide(page.cursor))

        return short


class ShortPages(MemoryWorld):
    """Size-capped pages, as DynamoDB, Cosmos DB and some HTTP services return them."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.runs, self.steps, self.events, self.hooks = (
            _ShortPages(self.runs),
            _ShortPages(self.steps),
            _ShortPages(self.events),
            _ShortPages(self.hooks),
        )

    async def get_stream_chunks(
        self, name: str, run_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> ChunkPage:
        capped = limit if limit > 1000 else min(limit, PAGE_CAP)
        page = await super().get_stream_chunks(name, run_id, limit=capped, cursor=_reveal(cursor))
        return dataclasses.replace(page, cursor=_hide(page.cursor))


class _NewestFirst:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list(self, *, pagination: Pagination = Pagination(), **kwargs: Any) -> Page[Any]:
        order = pagination.sort_order or "desc"
        return await self._inner.list(pagination=dataclasses.replace(pagination, sort_order=order), **kwargs)


class HooksNewestFirst(MemoryWorld):
    """``hooks.list`` without a sort order lists the newest hook first: §1 fixes no default for hooks."""

    def __init__(self, config: WorldConfig) -> None:
        super().__init__(config)
        self.hooks = _NewestFirst(self.hooks)  # type: ignore[assignment]


# -- time: equal timestamps, slow calls ------------------------------------------------

TICK_MICROSECONDS = 16_000
"""The clock's resolution: a Windows timer ticks every 15.6 ms."""


class CoarseClock(MemoryWorld):
    """Stamps events with a clock that ticks every 16 ms: events appended in one tick share ``created_at``."""

    def _stamp(self, last: datetime | None) -> datetime:
        now = super()._stamp(None)
        coarse = now.replace(microsecond=now.microsecond // TICK_MICROSECONDS * TICK_MICROSECONDS)
        return max(coarse, last) if last is not None else coarse


SLOW_SECONDS = 0.005


async def _slowly(name: str, args: Sequence[Any], kwargs: dict[str, Any], call: Any) -> Any:
    await asyncio.sleep(SLOW_SECONDS)
    return await call()


def _slow(config: WorldConfig | None = None) -> Any:
    """The local World, every call a few milliseconds slower, as over a network: nothing in the contract is timed.

    Built on the local World so races, crashes and leases across processes run slow too.
    """
    return CallProxy(LocalWorld(config), _slowly)


def _local(world_class: type[LocalWorld], name: str) -> WorldBackend:
    (local,) = local_backends()
    return dataclasses.replace(local, id=name, factory=world_class)


delivers_every_message_twice = _local(DeliversEveryMessageTwice, "legal-delivers-every-message-twice")
redelivers_after_ack = _local(RedeliversAfterAck, "legal-redelivers-after-ack")
delivers_late = backend(DeliversLate, "legal-delivers-late")
short_pages = backend(ShortPages, "legal-short-pages")
hooks_newest_first = backend(HooksNewestFirst, "legal-hooks-newest-first")
coarse_clock = backend(CoarseClock, "legal-coarse-clock")
slow = _local(_slow, "legal-slow")  # type: ignore[arg-type]
