"""Calls that go together: those arriving while one round trip is in flight share the next one.

The queue's acks and enqueues are many small statements, each a commit. Grouped,
a burst pays one round trip and one commit per group instead of per call. No
timer: a lone call goes at once, and under load a group is whatever queued up
during the previous group's round trip, so grouping adds no latency of its own.
Each call is still answered for itself: ``run`` returns one outcome per item, a
result or the exception of that item alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Outcome = R | Exception


class Grouped(Generic[T, R]):
    """``await grouped(item)``: ``item`` goes in the next group ``run`` is called with; its own outcome comes back.

    An exception raised by ``run`` itself fails every item of its group (for a
    statement whose outcome is unknown, such as a lost connection, that is the
    only honest answer).
    """

    def __init__(self, run: Callable[[Sequence[T]], Awaitable[Sequence[Outcome[R]]]]) -> None:
        self._run = run
        self._queued: list[tuple[T, asyncio.Future[R]]] = []
        self._flushing: asyncio.Future[None] | None = None

    async def __call__(self, item: T) -> R:
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queued.append((item, answer))
        if self._flushing is None:  # else the group in flight takes this one next
            self._flushing = asyncio.ensure_future(self._flush())
        return await answer

    async def _flush(self) -> None:
        try:
            while self._queued:
                group, self._queued = self._queued, []
                try:
                    outcomes = await self._run([item for item, _ in group])
                except BaseException as exc:
                    if not isinstance(exc, Exception):  # cancelled: no later flush would answer those queued since
                        group, self._queued = group + self._queued, []
                    for _, answer in group:
                        if not answer.done():  # a cancelled waiter wants no answer
                            answer.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise  # cancelled: the waiters have their answer
                    continue
                for (_, answer), outcome in zip(group, outcomes, strict=True):
                    if answer.done():
                        continue
                    if isinstance(outcome, Exception):
                        answer.set_exception(outcome)
                    else:
                        answer.set_result(outcome)
        finally:
            self._flushing = None
