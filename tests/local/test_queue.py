"""The durable queue: the SDK's Consumer over the local message store, in one process and several."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from conformance.builders import new_run, terminal_request
from reference_worlds.local import LocalWorld
from reference_worlds.local.database import DB_FILE, Database
from reference_worlds.local.queue import LocalQueue
from reference_worlds.local.signals import Notifier
from tests.local.database_thread import thread_held
from worlds_sdk.consumer import Delivery
from worlds_sdk.errors import ValidationError
from worlds_sdk.models import MessageMeta, Reschedule
from worlds_sdk.queue_options import QueueOptions

Poll = Callable[..., Awaitable[Any]]

Q = "__wkf_step_work"
PREFIX = "__wkf_step_"


class Recorder:
    """A handler that records (message, attempt, message_id, time) and answers with ``outcome(meta)``."""

    def __init__(self, outcome: Callable[[MessageMeta], Awaitable[Reschedule | None]] | None = None) -> None:
        self.seen: list[tuple[Any, int, str, float]] = []
        self._outcome = outcome

    async def __call__(self, message: Any, meta: MessageMeta) -> Reschedule | None:
        self.seen.append((message, meta.attempt, meta.message_id, time.time()))
        return None if self._outcome is None else await self._outcome(meta)

    async def count(self, n: int) -> bool:
        return len(self.seen) >= n


async def claim_one(store: Any, prefixes: list[str], lease_seconds: float) -> Delivery | None:
    """A claim of at most one message: the tests below reason about one delivery at a time."""
    deliveries = await store.claim(prefixes, lease_seconds, 1)
    assert len(deliveries) <= 1
    return deliveries[0] if deliveries else None


def with_world(config: dict[str, Any], body: Callable[[LocalWorld], Awaitable[None]], **overrides: Any) -> None:
    async def main() -> None:
        world = LocalWorld({**config, **overrides})
        try:
            await body(world)
        finally:
            await world.close()

    asyncio.run(main())


def test_a_raising_handler_gets_the_same_message_again_with_attempt_plus_one(
    config: dict[str, Any], eventually: Poll
) -> None:
    async def fail_first(meta: MessageMeta) -> None:
        if meta.attempt == 1:
            raise RuntimeError("transient")

    async def body(world: LocalWorld) -> None:
        handler = Recorder(fail_first)
        world.register_handler(PREFIX, handler)
        await world.start()
        sent = await world.queue(Q, {"blob": b"\x00\xff", "n": 1})
        await eventually(lambda: handler.count(2), what="a redelivery")
        assert [(m, a, i) for m, a, i, _ in handler.seen] == [
            ({"blob": b"\x00\xff", "n": 1}, a, sent.message_id) for a in (1, 2)
        ]
        assert await world.list_dead_letters() == []

    with_world(config, body)


def test_reschedule_redelivers_the_same_message_not_before_its_timeout_and_is_no_failure(
    config: dict[str, Any], eventually: Poll
) -> None:
    async def sleep_three_times(meta: MessageMeta) -> Reschedule | None:
        return Reschedule(timeout_seconds=0.3) if meta.attempt <= 3 else None

    async def body(world: LocalWorld) -> None:
        handler = Recorder(sleep_three_times)
        world.register_handler(PREFIX, handler)
        await world.start()
        await world.queue(Q, "sleepy")
        await eventually(lambda: handler.count(4), what="four deliveries")
        times = [t for *_, t in handler.seen]
        assert [a for _, a, _, _ in handler.seen] == [1, 2, 3, 4]
        assert all(later - earlier >= 0.3 for earlier, later in itertools.pairwise(times))
        assert len({i for _, _, i, _ in handler.seen}) == 1
        assert await world.list_dead_letters() == [], "reschedules are not failures, even past max_attempts"

    with_world(config, body, max_attempts=2)


def test_a_delayed_message_is_not_delivered_early(config: dict[str, Any], eventually: Poll) -> None:
    async def body(world: LocalWorld) -> None:
        handler = Recorder()
        world.register_handler(PREFIX, handler)
        await world.start()
        before = time.time()
        await world.queue(Q, "later", delay_seconds=0.5)
        await eventually(lambda: handler.count(1), what="the delayed message")
        assert handler.seen[0][3] - before >= 0.5

    with_world(config, body)


def test_an_idempotency_key_gives_one_message_until_it_is_acked(config: dict[str, Any], eventually: Poll) -> None:
    async def body(world: LocalWorld) -> None:
        first = await world.queue(Q, "once", idempotency_key="k")
        second = await world.queue(Q, "once again", idempotency_key="k")
        assert first == second
        await world.queue(Q, "sentinel")  # concurrency 1: handled after the keyed message
        handler = Recorder()
        world.register_handler(PREFIX, handler)
        await world.start()
        await eventually(lambda: handler.count(2), what="the keyed message and the sentinel")
        assert [m for m, *_ in handler.seen] == ["once", "sentinel"]
        third = await world.queue(Q, "after the ack", idempotency_key="k")
        assert third != first
        await eventually(lambda: handler.count(3), what="the re-keyed message")

    with_world(config, body, concurrency=1)


def test_a_message_that_keeps_failing_is_dead_lettered_never_dropped(config: dict[str, Any], eventually: Poll) -> None:
    async def always_fail(meta: MessageMeta) -> None:
        raise ValueError(f"bad message, attempt {meta.attempt}")

    async def body(world: LocalWorld) -> None:
        handler = Recorder(always_fail)
        world.register_handler(PREFIX, handler)
        await world.start()
        sent = await world.queue(Q, {"poison": True})
        dead = await eventually(world.list_dead_letters, what="the dead letter")
        assert [(d.message_id, d.queue_name, d.message, d.attempt, d.failures) for d in dead] == [
            (sent.message_id, Q, {"poison": True}, 3, 3)
        ]
        assert "ValueError: bad message, attempt 3" in dead[0].error
        assert [a for _, a, _, _ in handler.seen] == [1, 2, 3]

    with_world(config, body, max_attempts=3)


def test_a_handler_that_never_returns_times_out_as_a_failure_and_is_dead_lettered(
    config: dict[str, Any], eventually: Poll
) -> None:
    """Issue 13 item 5: the heartbeat no longer keeps a hung handler's message leased forever."""
    attempts: list[int] = []

    async def hang(message: Any, meta: MessageMeta) -> None:
        attempts.append(meta.attempt)
        await asyncio.Event().wait()  # never set: this handler never returns

    async def body(world: LocalWorld) -> None:
        world.register_handler(PREFIX, hang)
        await world.start()
        sent = await world.queue(Q, {"hung": True})
        dead = await eventually(world.list_dead_letters, what="the dead letter")
        assert [(d.message_id, d.attempt, d.failures) for d in dead] == [(sent.message_id, 2, 2)]
        assert "the handler did not finish within 0.3 s" in dead[0].error
        assert attempts == [1, 2]

    with_world(config, body, max_attempts=2, handler_timeout=0.3)


def test_a_running_handler_keeps_its_lease_against_another_consumer(config: dict[str, Any], eventually: Poll) -> None:
    """Q-5: the heartbeat extends the lease, so a handler slower than the lease is not doubled.

    A lease of 1.5 s, beats every 0.5 s: a beat and the next one's fsynced commit took up
    to 0.45 s under load on two cores, which a 0.5 s lease did not always survive.
    """

    async def slow(meta: MessageMeta) -> None:
        await asyncio.sleep(4.5)  # three lease lengths: the work, not a wait for a condition

    async def body(world: LocalWorld) -> None:
        rival = LocalWorld({**config, "lease_seconds": 1.5})
        holder, other = Recorder(slow), Recorder()
        rival.register_handler(PREFIX, other)
        world.register_handler(PREFIX, holder)
        await world.start()
        await world.queue(Q, "long job")
        await eventually(lambda: holder.count(1), what="the first delivery")
        await rival.start()
        await eventually(lambda: _acked(world), what="the slow handler's ack")
        await rival.close()
        assert other.seen == []

    with_world(config, body, lease_seconds=1.5)


async def _acked(world: LocalWorld) -> bool:
    count: int = await world._db.read(lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0])
    return count == 0


CONSUMER = """
import asyncio, sys
from reference_worlds.local import LocalWorld

async def main():
    world = LocalWorld({"path": sys.argv[1], "lease_seconds": 1.0, "poll_interval": 0.02})

    async def hold(message, meta):
        print(meta.message_id, meta.attempt, flush=True)
        await asyncio.Event().wait()

    world.register_handler("__wkf_step_", hold)
    await world.start()
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_a_sigkilled_consumers_message_goes_to_another_process_after_its_lease(
    config: dict[str, Any], eventually: Poll
) -> None:
    async def body(world: LocalWorld) -> None:
        sent = await world.queue(Q, "survives a crash")
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CONSUMER, config["path"], stdout=asyncio.subprocess.PIPE
        )
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        child.send_signal(signal.SIGKILL)
        await child.wait()
        assert line.split() == [sent.message_id.encode(), b"1"]
        handler = Recorder()
        world.register_handler(PREFIX, handler)
        await world.start()
        await eventually(lambda: handler.count(1), what="the redelivery")
        assert handler.seen[0][1:3] == (2, sent.message_id)

    with_world(config, body)


def test_close_releases_the_messages_of_handlers_it_cancels(config: dict[str, Any], eventually: Poll) -> None:
    async def forever(meta: MessageMeta) -> None:
        await asyncio.Event().wait()

    async def body(world: LocalWorld) -> None:
        stuck = Recorder(forever)
        world.register_handler(PREFIX, stuck)
        await world.start()
        await world.queue(Q, "released")
        await eventually(lambda: stuck.count(1), what="the first delivery")
        await world.close()  # grace 0.1 s, then cancel and release
        successor = LocalWorld(config)
        handler = Recorder()
        successor.register_handler(PREFIX, handler)
        await successor.start()
        try:  # the lease is 60 s: only the release lets the successor see it within the deadline
            await eventually(lambda: handler.count(1), what="the released message", timeout=20)
        finally:
            await successor.close()
        assert handler.seen[0][1] == 2

    with_world({**config, "lease_seconds": 60.0, "shutdown_grace": 0.1}, body)


def test_start_re_enqueues_each_pending_or_running_run_once(config: dict[str, Any], eventually: Poll) -> None:
    async def body(world: LocalWorld) -> None:
        pending, running, done = await new_run(world), await new_run(world, started=True), await new_run(world)
        await world.events.create(done.run_id, terminal_request("completed"))
        twin = LocalWorld(config)
        await twin.start()  # no handlers: it only re-enqueues
        await twin.close()
        handler = Recorder()
        world.register_handler("__wkf_workflow_", handler)
        await world.start()  # re-enqueues again: the idempotency key holds them to one each
        await eventually(lambda: handler.count(2), what="the recovered runs")
        await world.queue(Q, "sentinel")
        world.register_handler(PREFIX, handler)
        await eventually(lambda: handler.count(3), what="the sentinel")
        assert sorted(m["run_id"] for m, *_ in handler.seen[:2]) == sorted([pending.run_id, running.run_id])
        assert len(handler.seen) == 3

    with_world(config, body, concurrency=1)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("work", {}),
        ("__wkf_other_x", {}),
        (Q, {"delay_seconds": -1}),
        (Q, {"delay_seconds": float("inf")}),
        (Q, {"headers": {"a": 1}}),
        (Q, {"message": {1: "non-string key"}}),
    ],
)
def test_bad_enqueue_arguments_are_validation_errors(config: dict[str, Any], name: str, kwargs: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        message = kwargs.pop("message", "m")
        with pytest.raises(ValidationError):
            await world.queue(name, message, **kwargs)
        assert await _acked(world)

    with_world(config, body)


def test_the_store_counts_an_expired_lease_as_a_failure_and_ignores_the_stale_claim(
    tmp_path: Path, eventually: Poll
) -> None:
    async def main() -> None:
        db = Database(tmp_path / "world", busy_timeout=5)
        store = LocalQueue(db, Notifier())
        try:
            await store.enqueue(Q, "m", QueueOptions(deployment_id="local", idempotency_key=None, delay_seconds=0))
            # A lease of a second, not less: the second claim must read before it ends, and
            # under load the first claim's fsync alone has taken a good part of 50 ms.
            first = await claim_one(store, [PREFIX], 1.0)
            assert first is not None and (first.attempt, first.failures) == (1, 0)
            assert await claim_one(store, [PREFIX], 1.0) is None, "leased: invisible"
            second = await eventually(lambda: claim_one(store, [PREFIX], 30), what="the lease to expire")
            assert (second.message_id, second.attempt, second.failures) == (first.message_id, 2, 1)
            assert not await store.ack(first), "the stale claim cannot ack"
            assert not await store.extend_lease(first, 30)
            assert await claim_one(store, ["__wkf_workflow_"], 30) is None, "other prefixes do not match"
            assert await store.ack(second)
        finally:
            await db.close()

    asyncio.run(main())


def test_a_batch_claim_leases_up_to_its_limit_in_visibility_order(tmp_path: Path) -> None:
    async def main() -> None:
        db = Database(tmp_path / "world", busy_timeout=5)
        store = LocalQueue(db, Notifier())
        options = QueueOptions(deployment_id="local", idempotency_key=None, delay_seconds=0)
        try:
            sent = [(await store.enqueue(Q, {"n": n}, options))[0] for n in range(5)]
            first = await store.claim([PREFIX], 30, 3)
            assert [d.message_id for d in first] == sent[:3]
            assert len({d.claim_id for d in first}) == 3, "each delivery has its own claim"
            rest = await store.claim([PREFIX], 30, 3)
            assert [d.message_id for d in rest] == sent[3:], "leased messages are invisible"
            assert await store.claim([PREFIX], 30, 3) == []
            assert all([await store.ack(d) for d in [*first, *rest]])
        finally:
            await db.close()

    asyncio.run(main())


def test_a_message_enqueued_where_it_is_handled_is_stored_claimed_and_never_oversubscribes(
    config: dict[str, Any], eventually: Poll
) -> None:
    """Hand-off: with a free slot, the enqueue stores the message claimed (attempt 1) and runs its handler.

    The row is read while the event loop is blocked, so no claim can have happened
    after the enqueue returned. With ``concurrency`` 2, never more than 2 handlers
    run, however many enqueues race for the slots.
    """
    seen: list[tuple[int, int]] = []
    running = peak = 0

    def rows() -> list[tuple[Any, ...]]:
        with sqlite3.connect(Path(config["path"]) / DB_FILE) as conn:
            sql = "SELECT message_id, attempt, claim_id IS NOT NULL FROM messages ORDER BY created_us"
            return conn.execute(sql).fetchall()

    async def body(world: LocalWorld) -> None:
        nonlocal running, peak
        release = asyncio.Event()

        async def handler(message: Any, meta: MessageMeta) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            seen.append((message["n"], meta.attempt))
            try:
                await release.wait()
            finally:
                running -= 1

        world.register_handler(PREFIX, handler)
        await world.start()
        # start()'s first claim holds the free slots while it is in flight; the next is 5 s away
        await eventually(lambda: asyncio.sleep(0, world._consumer._reserved == 0), what="the first claim done")
        first = await world.queue(Q, {"n": 0})
        assert rows() == [(first.message_id, 1, 1)]  # claimed in the enqueue's own commit
        await eventually(lambda: asyncio.sleep(0, len(seen) == 1), what="its handler")
        await asyncio.gather(*(world.queue(Q, {"n": n}) for n in range(1, 6)))
        await eventually(lambda: asyncio.sleep(0, len(seen) == 2), what="the second slot filled")
        assert [claimed for _, _, claimed in rows()].count(1) == 2
        release.set()
        await eventually(lambda: asyncio.sleep(0, len(seen) == 6), what="every message handled")
        assert peak == 2 and sorted(seen) == [(n, 1) for n in range(6)]

    with_world(config, body, concurrency=2, poll_interval=5.0)


def test_enqueues_during_a_claim_in_flight_never_take_the_slots_that_claim_fills(
    config: dict[str, Any], eventually: Poll
) -> None:
    """The claim loop asks for every free slot; hand-offs arriving while that claim is in flight
    must not take the same slots, or both fill them (here: 4 handlers at ``concurrency`` 2)."""
    running = peak = 0

    async def body(world: LocalWorld) -> None:
        nonlocal running, peak
        release = asyncio.Event()

        async def handler(message: Any, meta: MessageMeta) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                await release.wait()
            finally:
                running -= 1

        world.register_handler(PREFIX, handler)
        await world.start()
        for n in range(2):  # due once the database thread is held: the held claim returns them
            await world.queue(Q, {"n": n}, delay_seconds=0.3)
        async with thread_held(world._db):  # the claim loop's next claim queues behind it
            await asyncio.sleep(0.5)  # the delayed messages are due; polls every 20 ms have queued a claim
            sending = asyncio.ensure_future(asyncio.gather(*(world.queue(Q, {"n": n}) for n in (2, 3))))
        await sending
        await eventually(lambda: asyncio.sleep(0, running == 2), what="both slots filled")
        await asyncio.sleep(0.2)  # a handler started past the limit would show by now
        assert peak == 2
        release.set()

    with_world(config, body, concurrency=2)


def test_a_hand_off_whose_insert_ends_after_stop_releases_the_message_instead_of_running_it(
    config: dict[str, Any], eventually: Poll
) -> None:
    handler = Recorder()

    def rows() -> list[tuple[Any, ...]]:
        with sqlite3.connect(Path(config["path"]) / DB_FILE) as conn:
            return conn.execute("SELECT attempt, claim_id IS NOT NULL FROM messages").fetchall()

    async def body(world: LocalWorld) -> None:
        world.register_handler(PREFIX, handler)
        await world.start()
        async with thread_held(world._db):
            sending = asyncio.ensure_future(world.queue(Q, {"n": 1}))  # a slot reserved, its insert queued
            await asyncio.sleep(0)
            stopping = asyncio.ensure_future(world._consumer.stop(30.0))  # returns once the insert is answered
        await asyncio.gather(sending, stopping)
        await eventually(lambda: asyncio.to_thread(lambda: rows() == [(1, 0)]), what="the message released")
        assert handler.seen == []

    with_world(config, body)
