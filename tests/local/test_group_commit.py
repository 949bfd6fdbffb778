"""Group commit in the local World's database: writes queued together share one COMMIT,
yet each is its own unit -- it sees those before it, and fails alone."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from reference_worlds.local import LocalWorld
from reference_worlds.local.database import Database
from tests.local.database_thread import thread_held
from worlds_sdk.errors import EntityConflictError
from worlds_sdk.models import EventRequest


class Refused(Exception):
    pass


def put(key: str, value: str) -> Any:
    return lambda conn: conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))


def get(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


async def one_batch_after_a_blocked_write(db: Database, works: list[Any], statements: list[str]) -> list[Any]:
    """``works`` queued behind a blocked write, so they form one batch; their outcomes."""
    async with thread_held(db, statements):
        queued = [asyncio.ensure_future(db.write(work)) for work in works]
    return await asyncio.gather(*queued, return_exceptions=True)


def test_a_batch_commits_once_each_write_sees_those_before_it_and_a_failure_is_rolled_back_alone(
    tmp_path: Path,
) -> None:
    statements: list[str] = []

    def reads_k1(conn: sqlite3.Connection) -> str | None:
        seen = get(conn, "k1")
        conn.execute("INSERT INTO meta (key, value) VALUES ('k2', ?)", (f"saw {seen}",))
        return seen

    def fails_after_writing(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k3', 'x')")
        raise Refused

    async def main() -> None:
        db = Database(tmp_path / "world", busy_timeout=5.0)
        try:
            outcomes = await one_batch_after_a_blocked_write(
                db, [put("k1", "v1"), reads_k1, fails_after_writing, put("k1", "again"), put("k4", "v4")], statements
            )
            assert outcomes[1] == "v1"  # the second write saw the first, uncommitted at the time
            assert isinstance(outcomes[2], Refused)
            assert isinstance(outcomes[3], EntityConflictError)  # a unique key refused: also alone
            values = await db.read(lambda conn: {k: get(conn, k) for k in ("k1", "k2", "k3", "k4")})
            assert values == {"k1": "v1", "k2": "saw v1", "k3": None, "k4": "v4"}
        finally:
            await db.close()

    asyncio.run(main())
    writes = statements[: statements.index("BEGIN")]  # up to the read's transaction
    assert writes.count("COMMIT") == 2, writes  # the blocked write's, then the batch's one


def test_concurrent_creates_with_a_conflict_among_them_lose_only_the_conflict(config: dict[str, Any]) -> None:
    async def main() -> None:
        world = LocalWorld(config)
        try:
            created = await world.events.create(
                None,
                EventRequest(
                    event_type="run_created",
                    event_data={"deployment_id": "d", "workflow_name": "w", "input": b"\x00"},
                ),
            )
            assert created.run is not None
            rid = created.run.run_id
            requests = [
                EventRequest(
                    event_type="step_created", correlation_id=f"s{i % 6}", event_data={"step_name": "s", "input": b""}
                )
                for i in range(12)
            ]
            outcomes = await asyncio.gather(*(world.events.create(rid, r) for r in requests), return_exceptions=True)
            conflicts = [o for o in outcomes if isinstance(o, Exception)]
            assert len(conflicts) == 6 and all(isinstance(o, EntityConflictError) for o in conflicts)
            steps = await world.steps.list(rid)
            assert sorted(s.step_id for s in steps.data) == [f"s{i}" for i in range(6)]
            events = await world.events.list(rid)
            assert [e.event_type for e in events.data].count("step_created") == 6
        finally:
            await world.close()

    asyncio.run(main())


def test_a_batch_of_writes_that_need_no_flush_skips_the_fsync_and_any_other_write_restores_it(
    tmp_path: Path,
) -> None:
    """``flush=False`` (queue acks): such a batch alone commits at ``synchronous=NORMAL``; mixed, it is FULL."""

    def level(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])

    async def batch(db: Database, flushes: list[bool]) -> list[Any]:
        async with thread_held(db):
            queued = [asyncio.ensure_future(db.write(level, flush=flush)) for flush in flushes]
        return await asyncio.gather(*queued)

    async def main() -> None:
        db = Database(tmp_path / "world", busy_timeout=5)
        try:
            assert await db.write(level, flush=False) == 1  # NORMAL: no fsync for a lone ack
            assert await db.write(level) == 2  # FULL again for every ordinary write
            assert await batch(db, [False, False]) == [1, 1]
            assert await batch(db, [False, True, False]) == [2, 2, 2]  # one durable write: the batch is synced
            assert await db.write(level) == 2
        finally:
            await db.close()

    asyncio.run(main())


def test_a_write_cancelled_while_queued_leaves_its_batch_mates_answered(tmp_path: Path) -> None:
    """A caller that gives up (a timeout cancels its task) must not strand the writes batched with it.

    The cancelled write may still commit (it was queued), but the others of its batch get
    their answers: before, answering the cancelled one raised on the database thread and
    the rest of the batch waited forever.
    """

    async def main() -> None:
        db = Database(tmp_path / "world", busy_timeout=5.0)
        try:
            async with thread_held(db):
                given_up = asyncio.ensure_future(db.write(put("k1", "v1")))
                kept = asyncio.ensure_future(db.write(put("k2", "v2")))
                await asyncio.sleep(0)  # both are queued behind the blocked write
                given_up.cancel()
            await asyncio.wait_for(kept, timeout=10)
            assert given_up.cancelled()
            assert await db.read(lambda conn: get(conn, "k2")) == "v2"
        finally:
            await db.close()

    asyncio.run(main())
