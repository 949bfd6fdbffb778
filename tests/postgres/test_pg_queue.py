"""The PostgreSQL MessageStore under the shared Consumer: claims, leases, idempotency, dead letters."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from reference_worlds.postgres import PostgresConfig, PostgresWorld
from reference_worlds.postgres.database import Database
from reference_worlds.postgres.queue import PostgresMessageStore, _Message
from worlds_sdk.consumer import Delivery
from worlds_sdk.errors import WorkflowWorldError, WorldUnavailableError
from worlds_sdk.models import EventRequest, MessageMeta
from worlds_sdk.queue_options import check_queue_options

pytestmark = pytest.mark.postgres

QUEUE = "__wkf_step_test/queue"
PREFIXES = ["__wkf_step_"]


async def _put(db: Database, n: int, **kwargs: Any) -> str:
    options: dict[str, Any] = {"deployment_id": None, "idempotency_key": None, "delay_seconds": None, "headers": None}
    checked = check_queue_options(QUEUE, **{**options, **kwargs}, world_deployment_id="d")
    message_id, _ = await PostgresMessageStore(db).enqueue(QUEUE, {"n": n}, checked)
    return message_id


async def claim_one(store: Any, prefixes: list[str], lease_seconds: float) -> Delivery | None:
    """A claim of at most one message: the tests below reason about one delivery at a time."""
    deliveries = await store.claim(prefixes, lease_seconds, 1)
    assert len(deliveries) <= 1
    return deliveries[0] if deliveries else None


def _with_dbs(config: dict[str, Any], n: int, body: Callable[[list[Database]], Awaitable[None]]) -> None:
    """Run ``body`` with ``n`` independent pools on the test's schema."""

    async def main() -> None:
        dbs = [Database(PostgresConfig.from_mapping(config)) for _ in range(n)]
        try:
            await body(dbs)
        finally:
            await asyncio.gather(*(db.close() for db in dbs))

    asyncio.run(main())


def test_concurrent_claimers_never_share_a_message(pg_config: dict[str, Any]) -> None:
    async def body(dbs: list[Database]) -> None:
        sent = {await _put(dbs[0], n) for n in range(40)}
        stores = [PostgresMessageStore(db) for db in dbs]

        async def drain(store: PostgresMessageStore) -> list[Delivery]:
            got = []
            while batch := await store.claim(PREFIXES, 30, 3):  # batch claims, as the consumer makes them
                got.extend(batch)
            return got

        claimed = [d.message_id for batch in await asyncio.gather(*(drain(s) for s in stores)) for d in batch]
        assert sorted(claimed) == sorted(sent)

    _with_dbs(pg_config, 4, body)


def test_an_expired_claim_counts_a_failure_and_can_no_longer_settle(pg_config: dict[str, Any], eventually: Any) -> None:
    async def body(dbs: list[Database]) -> None:
        db = dbs[0]
        store = PostgresMessageStore(db)
        await _put(db, 1)
        first = await claim_one(store, PREFIXES, 0.2)
        assert first is not None and (first.attempt, first.failures) == (1, 0)
        second = await eventually(lambda: claim_one(store, PREFIXES, 30), what="redelivery after the lease ran out")
        assert (second.message_id, second.attempt, second.failures) == (first.message_id, 2, 1)
        assert second.claim_id != first.claim_id
        assert not await store.ack(first) and not await store.extend_lease(first, 30)
        assert await store.ack(second)
        assert await claim_one(store, PREFIXES, 30) is None

    _with_dbs(pg_config, 1, body)


def test_acks_sent_together_are_grouped_and_each_is_answered_for_itself(pg_config: dict[str, Any]) -> None:
    async def body(dbs: list[Database]) -> None:
        db = dbs[0]
        store = PostgresMessageStore(db)
        for n in range(6):
            await _put(db, n)
        claimed = await store.claim(PREFIXES, 30, 6)
        assert len(claimed) == 6
        stale = dataclasses.replace(claimed[0], claim_id="not-the-current-claim")
        answers = await asyncio.gather(store.ack(stale), *(store.ack(d) for d in claimed), store.ack(claimed[1]))
        assert answers == [False, True, True, True, True, True, True, False]  # the second ack of one claim: gone
        assert await store.claim(PREFIXES, 0, 6) == []

    _with_dbs(pg_config, 1, body)


def test_enqueues_sent_together_are_one_insert_and_each_keeps_its_own_outcome(pg_config: dict[str, Any]) -> None:
    """Grouped enqueues: one transaction for the group (one ``xmin``), answered as if sent one by one."""

    def options(**kwargs: Any) -> Any:
        given = {"deployment_id": None, "idempotency_key": None, "delay_seconds": None, "headers": None, **kwargs}
        return check_queue_options(QUEUE, **given, world_deployment_id="d")

    async def body(dbs: list[Database]) -> None:
        store = PostgresMessageStore(dbs[0])
        held, _ = await store.enqueue(QUEUE, {"n": "held"}, options(idempotency_key="held"))
        outcomes = await asyncio.gather(
            *(store.enqueue(QUEUE, {"n": n}, options()) for n in range(5)),
            store.enqueue(QUEUE, {"n": 5}, options(idempotency_key="k")),
            store.enqueue(QUEUE, {"n": 6}, options(idempotency_key="k")),
            store.enqueue(QUEUE, {"n": 7}, options(idempotency_key="held")),
            store.enqueue(QUEUE, {"n": 8}, options(delay_seconds=3600)),
            store.enqueue(QUEUE, {"n": 9, "nul": "a\x00b"}, options(), lease_seconds=30),
        )
        ids = [message_id for message_id, _ in outcomes]
        assert ids[6] == ids[5] and ids[7] == held  # Q-3 inside the group and against a queued message
        assert len(set(ids[:6] + ids[8:])) == 8
        handed = outcomes[9][1]
        assert [delivery is None for _, delivery in outcomes] == [True] * 9 + [False]
        assert handed is not None and handed.attempt == 1 and handed.message == {"n": 9, "nul": "a\x00b"}
        with psycopg.connect(pg_config["url"]) as conn:
            query = sql.SQL("SELECT count(DISTINCT xmin::text) FROM {}.messages WHERE message_id = ANY(%s)")
            row = conn.execute(query.format(sql.Identifier(pg_config["schema"])), (ids[:6] + ids[8:],)).fetchone()
        assert row == (1,)  # one transaction stored the whole group
        claimed = await store.claim(PREFIXES, 30, 20)  # neither the delayed one nor the handed-off one
        assert sorted(d.message["n"] for d in claimed if d.message["n"] != "held") == [0, 1, 2, 3, 4, 5]
        assert await store.ack(handed)

    _with_dbs(pg_config, 1, body)


def test_a_group_the_server_refuses_is_sent_again_one_by_one_so_only_the_bad_message_fails(
    pg_config: dict[str, Any],
) -> None:
    async def body(dbs: list[Database]) -> None:
        store = PostgresMessageStore(dbs[0])
        good = {"queue_name": QUEUE, "body": "{}", "headers": "{}", "deployment_id": None, "idempotency_key": None}
        group = [_Message({**good, "message_id": f"msg_{n}", "delay_seconds": None}, None) for n in ("a", "bad", "c")]
        group[1].params["body"] = "not json"  # past the codec, only the server can refuse it
        first, refused, last = await store._enqueue_group(group)
        assert first == ("msg_a", None) and last == ("msg_c", None)
        assert isinstance(refused, WorkflowWorldError) and not isinstance(refused, WorldUnavailableError)
        assert sorted(d.message_id for d in await store.claim(PREFIXES, 30, 5)) == ["msg_a", "msg_c"]

    _with_dbs(pg_config, 1, body)


def test_delay_idempotency_and_dead_letters(pg_config: dict[str, Any]) -> None:
    async def body(dbs: list[Database]) -> None:
        db = dbs[0]
        store = PostgresMessageStore(db)
        await _put(db, 0, delay_seconds=3600)
        assert await claim_one(store, PREFIXES, 30) is None  # not before its time (Q-4)
        first = await _put(db, 1, idempotency_key="k")
        assert await _put(db, 2, idempotency_key="k") == first  # Q-3 while unacked
        delivery = await claim_one(store, PREFIXES, 30)
        assert delivery is not None and delivery.message == {"n": 1}
        assert await store.fail(delivery, delay_seconds=0, dead_letter=True, error="gave up\x00")
        assert await _put(db, 3, idempotency_key="k") != first  # the key is free once the message is gone
        with psycopg.connect(db.config.conninfo()) as conn:
            rows = conn.execute(
                sql.SQL("SELECT message_id, failures, last_error FROM {}.dead_letters").format(
                    sql.Identifier(db.config.schema)
                )
            ).fetchall()
        assert rows == [(first, 1, "gave up\\x00")]

    _with_dbs(pg_config, 1, body)


def test_start_reenqueues_each_live_run_once_while_unacked(pg_config: dict[str, Any]) -> None:
    async def body() -> None:
        world = PostgresWorld(pg_config)
        request = EventRequest(
            event_type="run_created", event_data={"deployment_id": "d", "workflow_name": "wf", "input": b""}
        )
        run = (await world.events.create(None, request)).run
        assert run is not None
        await world.start()
        await world.close()
        again = PostgresWorld(pg_config)
        await again.start()  # no handler registered: nothing is consumed
        await again.close()
        with psycopg.connect(pg_config["url"]) as conn:
            rows = conn.execute(
                sql.SQL("SELECT queue_name, body FROM {}.messages").format(sql.Identifier(pg_config["schema"]))
            ).fetchall()
        assert rows == [("__wkf_workflow_wf", {"run_id": run.run_id})]

    asyncio.run(body())


def test_a_handler_that_never_returns_times_out_as_a_failure_and_is_dead_lettered(
    pg_config: dict[str, Any], eventually: Any
) -> None:
    """Issue 13 item 5, on PostgreSQL: a hung handler's delivery fails after ``handler_timeout``."""
    attempts: list[int] = []

    async def hang(message: Any, meta: MessageMeta) -> None:
        attempts.append(meta.attempt)
        await asyncio.Event().wait()  # never set: this handler never returns

    def dead_letters() -> list[tuple[Any, ...]]:
        with psycopg.connect(pg_config["url"]) as conn:
            query = sql.SQL("SELECT message_id, attempt, failures, last_error FROM {}.dead_letters")
            return conn.execute(query.format(sql.Identifier(pg_config["schema"]))).fetchall()

    async def body() -> None:
        world = PostgresWorld({**pg_config, "max_attempts": 2, "handler_timeout": 0.3})
        try:
            world.register_handler("__wkf_step_", hang)
            await world.start()
            sent = await world.queue(QUEUE, {"hung": True})
            dead = await eventually(lambda: asyncio.to_thread(dead_letters), what="the dead letter")
            assert [row[:3] for row in dead] == [(sent.message_id, 2, 2)]
            assert "the handler did not finish within 0.3 s" in dead[0][3]
            assert attempts == [1, 2]
        finally:
            await world.close()

    asyncio.run(body())


def test_a_message_enqueued_where_it_is_handled_is_stored_claimed_and_never_oversubscribes(
    pg_config: dict[str, Any], eventually: Any
) -> None:
    """Hand-off: with a free slot, the enqueue stores the message claimed (attempt 1) and runs its handler.

    The row is read while the event loop is blocked, so no claim can have happened
    after the enqueue returned. With ``concurrency`` 2, never more than 2 handlers
    run, however many enqueues race for the slots.
    """
    seen: list[tuple[int, int]] = []
    running = peak = 0

    def rows() -> list[tuple[Any, ...]]:
        with psycopg.connect(pg_config["url"]) as conn:
            query = sql.SQL("SELECT message_id, attempt, claim_id IS NOT NULL FROM {}.messages ORDER BY created_at")
            return conn.execute(query.format(sql.Identifier(pg_config["schema"]))).fetchall()

    async def body() -> None:
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

        world = PostgresWorld({**pg_config, "concurrency": 2})
        try:
            world.register_handler("__wkf_step_", handler)
            await world.start()
            first = await world.queue(QUEUE, {"n": 0})
            assert rows() == [(first.message_id, 1, True)]  # claimed in the enqueue's own commit
            await eventually(lambda: asyncio.sleep(0, len(seen) == 1), what="its handler")
            await asyncio.gather(*(world.queue(QUEUE, {"n": n}) for n in range(1, 6)))
            await eventually(lambda: asyncio.sleep(0, len(seen) == 2), what="the second slot filled")
            assert [claimed for _, _, claimed in rows()].count(True) == 2
            release.set()
            await eventually(lambda: asyncio.sleep(0, len(seen) == 6), what="every message handled")
            assert peak == 2 and sorted(seen) == [(n, 1) for n in range(6)]
        finally:
            await world.close()

    asyncio.run(body())
