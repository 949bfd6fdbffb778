"""A scripted queue consumer for the suite: plans per message, records every delivery.

Each message carries a ``key``; its plan says what the handler does on each
delivery (``ack``, ``raise``, or ``reschedule:<seconds>``). Every delivery and
ack is written to a :class:`~conformance.history.DeliveryLog` (a delivery that ends
without an ack as ``release``), so the same checkers judge in-process and
multi-process histories.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worlds_sdk.models import MessageMeta, Reschedule
from worlds_sdk.protocols import World

from .deadlines import WorldHung
from .history import DeliveryLog

STALLED_WAIT = 3.0
"""Seconds a wait for a first delivery lasts once the queue has delivered nothing in an earlier wait."""


class QueueStall:
    """Whether the World's queue was seen to deliver nothing, shared by every wait of the run.

    A queue that accepts messages and never delivers them would cost every queue
    test its whole wait (15-60 s each). After the first wait that ends without a
    single delivery, a later wait that has seen no delivery yet gives up after
    ``STALLED_WAIT`` seconds, naming the first; any delivery clears it.
    """

    def __init__(self) -> None:
        self.first: str | None = None

    def limit(self, timeout: float, delivered: bool) -> float:
        return timeout if delivered or self.first is None else min(timeout, STALLED_WAIT)

    def timed_out(self, what: str, delivered: bool, limit: float, timeout: float) -> BaseException:
        """The failure of a wait; remembers a wait that saw no delivery at all."""
        if limit < timeout:
            return WorldHung(f"{what}; the queue delivered nothing in an earlier wait either ({self.first})")
        if not delivered:
            self.first = what
        return AssertionError(what)

    def delivered(self) -> None:
        self.first = None


STALL = QueueStall()


async def wait_for_log(log: DeliveryLog, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll a (child consumer's) delivery log until ``condition`` holds; fail after ``timeout``."""
    start = time.monotonic()
    while not condition():
        delivered = bool(log.entries())
        if delivered:
            STALL.delivered()
        limit = STALL.limit(timeout, delivered)
        if time.monotonic() - start > limit:
            raise STALL.timed_out(f"timed out waiting for {what} after {limit:g}s", delivered, limit, timeout)
        await asyncio.sleep(0.05)


class PlannedFailure(Exception):
    """Raised by the probe's handler when a plan says ``raise``."""


@dataclass
class Delivery:
    key: str
    message: Any
    meta: MessageMeta
    at: float
    finished_at: float | None = None


@dataclass
class QueueProbe:
    log_path: Path
    plans: dict[str, Sequence[str]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    acks: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.log = DeliveryLog(self.log_path)
        self._changed = asyncio.Event()

    def attach(self, world: World, prefix: str = "__wkf_step_") -> None:
        world.register_handler(prefix, self.handle)

    async def handle(self, message: Any, meta: MessageMeta) -> Reschedule | None:
        STALL.delivered()
        key = message.get("key") if isinstance(message, dict) else None
        delivery = Delivery(str(key), message, meta, time.monotonic())
        self.deliveries.append(delivery)
        self.log.record("deliver", message, meta)
        plan = self.plans.get(str(key), ())
        n = sum(1 for d in self.deliveries if d.key == delivery.key)
        action = plan[n - 1] if n <= len(plan) else "ack"
        try:
            if action == "raise":
                self.log.record("release", message, meta)
                raise PlannedFailure(f"planned failure of {key} on delivery {n}")
            if action.startswith("reschedule:"):
                self.log.record("release", message, meta)
                return Reschedule(timeout_seconds=float(action.split(":", 1)[1]))
            self.log.record("ack", message, meta)
            self.acks[delivery.key] += 1
            return None
        finally:
            delivery.finished_at = time.monotonic()
            self._changed.set()

    def of(self, key: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.key == key]

    def acked(self, key: str) -> bool:
        return self.acks[key] > 0

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        """Poll ``condition`` (woken by deliveries) until it holds; fail after ``timeout``."""
        start = time.monotonic()
        while not condition():
            limit = STALL.limit(timeout, bool(self.deliveries))
            remaining = start + limit - time.monotonic()
            if remaining <= 0:
                what = f"condition not reached in {limit:g}s; deliveries: {self.summary()}"
                raise STALL.timed_out(what, bool(self.deliveries), limit, timeout)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))

    async def wait_all_acked(self, keys: Sequence[str], timeout: float = 15.0) -> None:
        await self.wait_until(lambda: all(self.acked(k) for k in keys), timeout)

    def summary(self) -> list[tuple[str, int, str]]:
        return [(d.key, d.meta.attempt, d.meta.message_id) for d in self.deliveries][-20:]
