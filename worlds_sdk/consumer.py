"""The queue delivery loop, shared by every World that stores its own messages.

A World with a durable queue has two halves: a *store* that holds messages and
hands them out under a lease (SQLite rows, PostgreSQL rows, …), and the *loop*
that runs handlers and turns their outcome into the next state of the message.
The loop is the same everywhere, so it lives here once; a World implements the
small :class:`MessageStore` protocol and runs a :class:`Consumer` over it.

The contract between the two (SPEC §4):

- :meth:`MessageStore.claim` picks up to ``limit`` *visible* messages whose queue
  name starts with one of the given prefixes, makes each invisible for
  ``lease_seconds`` (the lease, or visibility timeout), increments its delivery
  count and returns a :class:`Delivery` for each (the consumer asks for as many
  as it has free handler slots: one round trip for a backlog, not one per
  message). ``attempt`` is that count, 1-based (Q-2). If the previous claim of
  a message was never resolved (its holder died and the lease ran
  out), the store counts that as a failure (``failures + 1``), so a message that
  kills its consumer is eventually dead-lettered instead of looping forever.
  Every claim gets a fresh ``claim_id``.
- Every later call names the delivery; the store applies it only while the
  delivery's ``claim_id`` is still the message's current claim, and returns
  whether it did. A consumer that lost its lease (it stalled, another consumer
  took the message over) can therefore never ack or move a message another
  consumer now holds.
- :meth:`~MessageStore.ack` removes the message for good;
  :meth:`~MessageStore.reschedule` makes the *same* message visible again after a
  delay without counting a failure (a handler's ``Reschedule``, sleeps);
  :meth:`~MessageStore.fail` records a failure and either makes the message
  visible after a back-off or moves it to a dead-letter record (never dropped);
  :meth:`~MessageStore.extend_lease` is the heartbeat of a running handler.

Delivery is at-least-once: a handler may see a message again after a crash, a
lost lease or a failed ack, so handlers must be idempotent (the runtime's are,
through ``events.create``).

**Hand-off.** A message enqueued by the process whose consumer would handle it
need not make the round trip store → wake-up → claim: :meth:`Consumer.enqueue`
reserves a free handler slot first and asks the store to insert the message
*already claimed* (``attempt`` 1, a fresh ``claim_id``, leased, in the same
commit), then runs the handler at once. The message is as durable as any other
when the enqueue returns, its claim is an ordinary one (heartbeat, ack, a lost
lease redelivers it), and a consumer never runs more than ``concurrency``
handlers; it only saves the paced path one commit and a wake-up.

Example -- a World wires its store, the handlers registered by the runtime and
its wake-up signal into a consumer, and starts it::

    consumer = Consumer(store, lease_seconds=30, poll_interval=0.5, wakeup=notifier.wait)
    consumer.register("__wkf_workflow_", run_workflow)
    consumer.start()          # inside the running event loop
    ...
    await consumer.stop(grace_seconds=10)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .models import MessageMeta, Reschedule
from .protocols import QueueHandler

logger = logging.getLogger(__name__)

Wakeup = Callable[[float], Awaitable[object]]
"""``wakeup(timeout)`` returns when new messages may be ready, or after ``timeout`` seconds.

A hint only (an in-process signal, a PostgreSQL ``NOTIFY``): it may return early
or late, and the consumer polls on every timeout anyway, so correctness never
depends on it.
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One claim of one message, as :meth:`MessageStore.claim` hands it out.

    ``attempt`` counts deliveries (1-based, every claim adds one, reschedules
    included); ``failures`` counts earlier deliveries that raised or whose holder
    lost its lease. ``claim_id`` identifies this claim: the store ignores calls
    made for a claim that is no longer current.
    """

    message_id: str
    queue_name: str
    message: Any
    attempt: int
    failures: int
    claim_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    deployment_id: str | None = None

    def meta(self) -> MessageMeta:
        return MessageMeta(
            message_id=self.message_id,
            queue_name=self.queue_name,
            attempt=self.attempt,
            headers=self.headers,
            deployment_id=self.deployment_id,
        )


class MessageStore(Protocol):
    """Durable messages handed out under a lease; see the module docstring for the contract.

    Each method is atomic on its own (one transaction or one statement). The
    ``bool`` results say whether ``delivery`` was still the current claim and the
    change was applied.
    """

    async def claim(self, prefixes: Sequence[str], lease_seconds: float, limit: int) -> Sequence[Delivery]:
        """Lease up to ``limit`` visible messages whose queue names start with one of ``prefixes``."""
        ...

    async def extend_lease(self, delivery: Delivery, lease_seconds: float) -> bool:
        """Keep the message invisible for another ``lease_seconds`` from now (heartbeat)."""
        ...

    async def ack(self, delivery: Delivery) -> bool:
        """Delete the message: it was handled."""
        ...

    async def reschedule(self, delivery: Delivery, delay_seconds: float) -> bool:
        """Release the message, visible again ``delay_seconds`` from now; not a failure."""
        ...

    async def fail(self, delivery: Delivery, *, delay_seconds: float, dead_letter: bool, error: str) -> bool:
        """Count a failure; retry after ``delay_seconds``, or move it to the dead letters with ``error``."""
        ...


Insert = Callable[[float | None], Awaitable[tuple[str, "Delivery | None"]]]
"""``insert(lease_seconds)`` stores one message and returns its id (:meth:`Consumer.enqueue`).

With ``lease_seconds`` set, the store inserts it claimed as :meth:`MessageStore.claim`
would (``attempt`` 1, a fresh claim id, invisible for the lease) in the same
commit, and returns that :class:`Delivery`; with ``None``, or when an idempotency
key finds the message already queued (Q-3), it returns ``None`` for it.
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential back-off with a cap: ``initial * factor ** (failures - 1)``, at most ``maximum``."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait before redelivering a message that has failed ``failures`` times."""
        return float(min(self.maximum, self.initial * self.factor ** max(0, failures - 1)))


class Consumer:
    """Runs registered handlers over the messages of one :class:`MessageStore`.

    - Handlers are chosen by queue-name prefix (the longest registered prefix wins).
    - At most ``concurrency`` handlers run at once; at capacity the consumer stops
      claiming, so it never holds a lease it has no capacity to work on.
    - While a handler runs, its lease is extended every ``lease_seconds / 3``, so a
      slow handler keeps its message and only a dead or stalled one loses it.
    - A handler returning ``None`` acks; ``Reschedule(t)`` reschedules; raising (or
      returning anything else) fails with :class:`Backoff` delay. When a message
      has failed ``max_attempts`` times it is dead-lettered, never dropped.
    - A handler still running after ``handler_timeout`` seconds is cancelled and
      its delivery counts as a failure, like a raise: the heartbeat would
      otherwise keep a hung handler's message leased forever. The failure is
      recorded once the cancelled handler has ended, so a redelivery never runs
      beside it (Q-5). The contract gives a message no deadline of its own (a
      ``Reschedule``'s ``timeout_seconds`` is a delay, Q-4), so one limit applies
      to every delivery.
    - :meth:`stop` stops claiming, waits up to a grace period for running handlers,
      then cancels the rest and releases their messages for immediate redelivery.
    """

    def __init__(
        self,
        store: MessageStore,
        *,
        lease_seconds: float = 30.0,
        poll_interval: float = 0.5,
        concurrency: int = 10,
        max_attempts: int = 48,
        handler_timeout: float = 900.0,
        backoff: Backoff = Backoff(),
        wakeup: Wakeup | None = None,
        hand_off: bool = True,
    ) -> None:
        if min(lease_seconds, poll_interval, handler_timeout) <= 0 or concurrency < 1 or max_attempts < 1:
            raise ValueError(
                "lease_seconds, poll_interval and handler_timeout must be > 0, concurrency and max_attempts >= 1"
            )
        self.store = store
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.handler_timeout = handler_timeout
        self.backoff = backoff
        self._wakeup = wakeup
        self.hand_off = hand_off
        """Whether :meth:`enqueue` may hand messages straight to this consumer; off, every delivery comes
        from :meth:`MessageStore.claim` (for a store wrapper that changes what a claim does)."""
        self._handlers: dict[str, QueueHandler] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._running: dict[asyncio.Task[None], Delivery] = {}
        self._reserved = 0
        """Handler slots taken by hand-offs whose insert is in flight (:meth:`enqueue`)."""
        self._freed = asyncio.Event()
        self._unrun: list[Delivery] = []
        """Hand-offs stored claimed after :meth:`stop` began, for it to release."""
        self._stop: asyncio.Event | None = None

    def register(self, prefix: str, handler: QueueHandler) -> None:
        """Route messages whose queue name starts with ``prefix`` to ``handler`` (also after start)."""
        if not prefix:
            raise ValueError("a handler prefix must not be empty")
        self._handlers[prefix] = handler

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    @property
    def started(self) -> bool:
        return self._loop_task is not None

    def start(self) -> None:
        """Begin claiming in the running event loop; starting twice is a no-op."""
        if self._loop_task is not None:
            return
        self._stop = asyncio.Event()
        self._freed = asyncio.Event()  # of this event loop
        self._loop_task = asyncio.get_running_loop().create_task(self._claim_loop(), name="worlds-consumer")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop claiming, let running handlers finish for up to ``grace_seconds``, cancel the rest.

        A cancelled handler's message, and a hand-off whose insert ended after
        the stop began, are released for immediate redelivery (to another
        consumer, or to this World once it is started again). A hand-off still
        inserting when the grace is over is left to its lease, as after a crash.
        """
        if self._loop_task is None or self._stop is None:
            return
        self._stop.set()
        await self._loop_task
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        while self._reserved and loop.time() < deadline:  # hand-offs whose insert is in flight end in _unrun
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), deadline - loop.time())
        if self._running:
            await asyncio.wait(list(self._running), timeout=max(0.0, deadline - loop.time()))
        leftovers = dict(self._running)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        unrun, self._unrun = self._unrun, []
        for delivery in [*leftovers.values(), *unrun]:
            with contextlib.suppress(Exception):
                await self.store.reschedule(delivery, 0.0)
        self._loop_task = None

    async def enqueue(self, queue_name: str, delay_seconds: float | None, insert: Insert) -> str:
        """Store a message through ``insert``, handed straight to this consumer if it can take it now.

        It can when it is started and not stopping, a handler matches
        ``queue_name``, the message is not delayed and a handler slot is free.
        The slot is reserved before the insert, so concurrent enqueues never
        oversubscribe ``concurrency``; the handler starts only after the insert
        committed. (Should the caller be cancelled while a hand-off's insert is in
        flight, the message may be stored claimed with nobody to run it: its
        lease runs out and it is redelivered, as after a consumer's crash.)
        """
        direct = not delay_seconds and self._reserve(queue_name)
        delivery = None
        try:
            message_id, delivery = await insert(self.lease_seconds if direct else None)
        finally:
            if direct:
                self._reserved -= 1
                self._freed.set()
                if delivery is not None:
                    self._hand_off(delivery)
        return message_id

    def _reserve(self, queue_name: str) -> bool:
        if not self.hand_off or self._stop is None or self._stop.is_set() or self._busy() >= self.concurrency:
            return False
        if self._handler_for(queue_name) is None:
            return False
        self._reserved += 1
        return True

    def _busy(self) -> int:
        return len(self._running) + self._reserved

    def _hand_off(self, delivery: Delivery) -> None:
        if self._stop is not None and not self._stop.is_set():
            self._run(delivery)
        else:  # stopped while the insert was in flight: stop() releases it for redelivery at once
            self._unrun.append(delivery)

    def _run(self, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._process(delivery), name=delivery.message_id)
        self._running[task] = delivery
        task.add_done_callback(self._forget)

    async def _claim_loop(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            if self._busy() >= self.concurrency:
                self._freed.clear()
                freed = asyncio.ensure_future(self._freed.wait())
                try:
                    await self._wait_for([freed], timeout=None)
                finally:
                    freed.cancel()
                continue
            deliveries: Sequence[Delivery] = ()
            if self._handlers:
                try:
                    free = self.concurrency - self._busy()
                    deliveries = await self.store.claim(self.prefixes, self.lease_seconds, free)
                except Exception:
                    logger.exception("claiming messages failed; retrying after the poll interval")
            if not deliveries:
                hint = [asyncio.ensure_future(self._wakeup(self.poll_interval))] if self._wakeup else []
                try:
                    await self._wait_for(hint, timeout=self.poll_interval)
                finally:
                    for future in hint:
                        future.cancel()
                continue
            for delivery in deliveries:
                if self._busy() < self.concurrency:
                    self._run(delivery)
                else:  # hand-offs took slots while the claim was in flight: back for the next claim
                    with contextlib.suppress(Exception):  # else its lease runs out, as after a crash
                        await self.store.reschedule(delivery, 0.0)

    async def _wait_for(self, futures: Sequence[asyncio.Future[Any]], timeout: float | None) -> None:
        """Wait until one of ``futures`` is done, :meth:`stop` is called, or ``timeout`` passes."""
        assert self._stop is not None
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([stopping, *futures], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._freed.set()

    def _handler_for(self, queue_name: str) -> QueueHandler | None:
        """The handler of the longest registered prefix of ``queue_name``; ``None`` if none is."""
        matches = [prefix for prefix in self._handlers if queue_name.startswith(prefix)]
        return self._handlers[max(matches, key=len)] if matches else None

    async def _process(self, delivery: Delivery) -> None:
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(delivery))
        try:
            if delivery.failures >= self.max_attempts:  # its holders kept dying: a poison message
                await self._settle_failure(delivery, "the lease expired on every attempt (the consumer died?)")
                return
            deadline = asyncio.timeout(self.handler_timeout)
            try:
                async with deadline:
                    handler = self._handler_for(delivery.queue_name)
                    assert handler is not None, "claimed and handed off only for a registered prefix"
                    outcome = await handler(delivery.message, delivery.meta())
            except Exception:
                expired = f"the handler did not finish within {self.handler_timeout:g} s"
                await self._settle_failure(delivery, expired if deadline.expired() else traceback.format_exc())
                return
            if outcome is None:
                await self._settled(delivery, "ack", self.store.ack(delivery))
            elif isinstance(outcome, Reschedule):
                delay = max(0.0, float(outcome.timeout_seconds))
                await self._settled(delivery, "reschedule", self.store.reschedule(delivery, delay))
            else:
                await self._settle_failure(delivery, f"handler returned {outcome!r}, expected None or Reschedule")
        except Exception:
            logger.exception("settling message %s failed; it will be redelivered", delivery.message_id)
        finally:
            heartbeat.cancel()

    async def _settle_failure(self, delivery: Delivery, error: str) -> None:
        failures = delivery.failures + 1
        dead = failures >= self.max_attempts
        if dead:
            logger.error("message %s dead-lettered after %d failures", delivery.message_id, failures)
        settle = self.store.fail(delivery, delay_seconds=self.backoff.delay(failures), dead_letter=dead, error=error)
        await self._settled(delivery, "fail", settle)

    async def _settled(self, delivery: Delivery, what: str, settle: Awaitable[bool]) -> None:
        if not await settle:
            logger.warning("message %s: %s ignored, the lease was lost to another consumer", delivery.message_id, what)

    async def _heartbeat(self, delivery: Delivery) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await self.store.extend_lease(delivery, self.lease_seconds):
                    logger.warning("message %s: lease lost while its handler runs", delivery.message_id)
                    return
            except Exception:
                logger.exception("extending the lease of message %s failed", delivery.message_id)
