"""The local World's inspection surface (capability ``inspection``, rules OP-1 to OP-4).

Statistics and listings are one read transaction each (one snapshot); moving a
message between the queue and the dead letters, and deleting one batch of
expired runs with everything they own, are one write transaction each, so an
operator can run them while the World is in use and a crash leaves each whole
or absent.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime

from worlds_sdk import codec
from worlds_sdk.errors import NotFoundError
from worlds_sdk.inspection import DeadLetter, QueueStats, check_count, check_cutoff
from worlds_sdk.models import TERMINAL_RUN_STATUSES

from .database import Database
from .queue import now_us
from .records import from_us
from .signals import Notifier

_TERMINAL = tuple(sorted(TERMINAL_RUN_STATUSES))
_RUN_TABLES = ("events", "steps", "hooks", "waits")


def _dead_letter(row: sqlite3.Row) -> DeadLetter:
    return DeadLetter(
        message_id=row["message_id"],
        queue_name=row["queue_name"],
        message=codec.loads(row["body"]),
        attempt=row["attempt"],
        failures=row["failures"],
        error=row["error"],
        dead_at=from_us(row["dead_us"]),
    )


class LocalInspection:
    """Implements :class:`worlds_sdk.protocols.InspectableWorld` over the world database."""

    def __init__(self, db: Database, queued: Notifier) -> None:
        self._db = db
        self._queued = queued

    async def queue_stats(self) -> Sequence[QueueStats]:
        def read(conn: sqlite3.Connection) -> list[QueueStats]:
            now = now_us()
            live = conn.execute(
                "SELECT queue_name,"
                " sum(visible_us <= :now) AS ready,"
                " sum(visible_us > :now AND claim_id IS NOT NULL) AS leased,"
                " sum(visible_us > :now AND claim_id IS NULL) AS delayed,"
                " min(CASE WHEN visible_us <= :now THEN visible_us END) AS oldest_ready_us,"
                " max(failures) AS max_failures"
                " FROM messages GROUP BY queue_name",
                {"now": now},
            ).fetchall()
            dead = conn.execute(
                "SELECT queue_name, count(*) AS n,"
                " (SELECT error FROM dead_letters AS d WHERE d.queue_name = dl.queue_name"
                "  ORDER BY dead_us DESC, message_id DESC LIMIT 1) AS last_error"
                " FROM dead_letters AS dl GROUP BY queue_name"
            ).fetchall()
            stats = {
                r["queue_name"]: QueueStats(
                    queue_name=r["queue_name"],
                    ready=r["ready"],
                    leased=r["leased"],
                    delayed=r["delayed"],
                    oldest_ready_seconds=None
                    if r["oldest_ready_us"] is None
                    else max(0, now - r["oldest_ready_us"]) / 1e6,
                    max_failures=r["max_failures"],
                )
                for r in live
            }
            for r in dead:
                base = stats.get(r["queue_name"], QueueStats(queue_name=r["queue_name"]))
                stats[r["queue_name"]] = dataclasses.replace(base, dead_letters=r["n"], last_error=r["last_error"])
            return [stats[name] for name in sorted(stats)]

        return await self._db.read(read)

    async def list_dead_letters(self, *, limit: int = 100) -> Sequence[DeadLetter]:
        check_count(limit, "limit")
        sql = "SELECT * FROM dead_letters ORDER BY dead_us, message_id LIMIT ?"
        rows = await self._db.read(lambda c: c.execute(sql, (limit,)).fetchall())
        return [_dead_letter(row) for row in rows]

    async def quarantine(self, message_id: str, reason: str) -> DeadLetter:
        def move(conn: sqlite3.Connection) -> sqlite3.Row | None:
            moved = conn.execute(
                "INSERT INTO dead_letters (message_id, queue_name, body, headers, deployment_id, attempt, failures,"
                " error, dead_us) SELECT message_id, queue_name, body, headers, deployment_id, attempt, failures,"
                " ?, ? FROM messages WHERE message_id = ?",
                (reason, now_us(), message_id),
            ).rowcount
            if not moved:
                return None
            conn.execute("DELETE FROM messages WHERE message_id = ?", (message_id,))
            return conn.execute("SELECT * FROM dead_letters WHERE message_id = ?", (message_id,)).fetchone()

        row = await self._db.write(move)
        if row is None:
            raise NotFoundError(f"no message has id {message_id!r}")
        return _dead_letter(row)

    async def requeue(self, message_ids: Sequence[str] | None = None) -> int:
        """Dead letters back as ready messages, same id; failures start again from 0 and the idempotency key is gone."""

        def move(conn: sqlite3.Connection) -> int:
            if message_ids is None:
                ids = [r[0] for r in conn.execute("SELECT message_id FROM dead_letters")]
            else:
                ids = list(message_ids)
            moved = 0
            now = now_us()
            for message_id in ids:
                moved += conn.execute(
                    "INSERT INTO messages (message_id, queue_name, body, headers, deployment_id, attempt,"
                    " visible_us, created_us) SELECT message_id, queue_name, body, headers, deployment_id, attempt,"
                    " ?, ? FROM dead_letters WHERE message_id = ?",
                    (now, now, message_id),
                ).rowcount
                conn.execute("DELETE FROM dead_letters WHERE message_id = ?", (message_id,))
            return moved

        moved = await self._db.write(move)
        self._queued.notify()
        return moved

    async def count_expired_runs(self, completed_before: datetime) -> int:
        check_cutoff(completed_before)
        return await self._db.read(lambda c: sum(1 for _ in _expired(c, completed_before)))

    async def delete_expired_runs(self, completed_before: datetime, *, batch_size: int = 100) -> int:
        check_cutoff(completed_before)
        check_count(batch_size, "batch_size")

        def delete(conn: sqlite3.Connection) -> int:
            doomed = []
            for run_id in _expired(conn, completed_before):
                doomed.append(run_id)
                if len(doomed) >= batch_size:
                    break
            if not doomed:
                return 0
            marks = ", ".join("?" * len(doomed))
            conn.execute(
                f"DELETE FROM chunks WHERE name IN (SELECT name FROM streams WHERE run_id IN ({marks}))", doomed
            )
            for table in (*_RUN_TABLES, "streams", "runs"):
                conn.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", doomed)
            return len(doomed)

        return await self._db.write(delete)


def _expired(conn: sqlite3.Connection, completed_before: datetime) -> Iterator[str]:
    """Terminal runs completed before the cutoff, oldest first; a live run is never among them (OP-4)."""
    marks = ", ".join("?" * len(_TERMINAL))
    rows = conn.execute(
        "SELECT run_id, json_extract(body, '$.completed_at.\"$t\"') AS completed_at FROM runs"
        f" WHERE status IN ({marks}) ORDER BY created_us, run_id",
        _TERMINAL,
    )
    for run_id, completed_at in rows:
        if completed_at is not None and datetime.fromisoformat(completed_at) < completed_before:
            yield run_id
