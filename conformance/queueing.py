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

from .history import DeliveryLog


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
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not reached in {timeout}s; deliveries: {self.summary()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))

    async def wait_all_acked(self, keys: Sequence[str], timeout: float = 15.0) -> None:
        await self.wait_until(lambda: all(self.acked(k) for k in keys), timeout)

    def summary(self) -> list[tuple[str, int, str]]:
        return [(d.key, d.meta.attempt, d.meta.message_id) for d in self.deliveries][-20:]
