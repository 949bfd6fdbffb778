"""The Postgres World's inspection surface (capability ``inspection``, rules OP-1 to OP-4).

Each method is one statement of ``sql/queries.sql``, so each is atomic and sees
one snapshot; retention deletes one batch per statement, skipping runs that
another transaction holds, so it is safe beside a World in use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from worlds_sdk.codec import from_wire
from worlds_sdk.errors import NotFoundError
from worlds_sdk.inspection import DeadLetter, QueueStats, check_count, check_cutoff

from .database import Database, Row
from .queries import query


def _dead_letter(row: Row) -> DeadLetter:
    return DeadLetter(
        message_id=row["message_id"],
        queue_name=row["queue_name"],
        message=from_wire(row["body"]),
        attempt=row["attempt"],
        failures=row["failures"],
        error=row["last_error"] or "",
        dead_at=row["dead_at"],
    )


class PostgresInspection:
    """Implements :class:`worlds_sdk.protocols.InspectableWorld` with the named queries."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def queue_stats(self) -> Sequence[QueueStats]:
        return [QueueStats(**row) for row in await self._db.fetchall(query("queue_stats"))]

    async def list_dead_letters(self, *, limit: int = 100) -> Sequence[DeadLetter]:
        check_count(limit, "limit")
        return [_dead_letter(row) for row in await self._db.fetchall(query("dead_letters"), {"limit": limit})]

    async def quarantine(self, message_id: str, reason: str) -> DeadLetter:
        row = await self._db.fetchone(
            query("quarantine"), {"message_id": message_id, "error": reason.replace("\x00", "\\x00")}
        )
        if row is None:
            raise NotFoundError(f"no message has id {message_id!r}")
        return _dead_letter(row)

    async def requeue(self, message_ids: Sequence[str] | None = None) -> int:
        params = {"all": message_ids is None, "ids": list(message_ids or [])}
        row = await self._db.fetchone(query("requeue"), params)
        assert row is not None
        return int(row["requeued"])

    async def count_expired_runs(self, completed_before: datetime) -> int:
        check_cutoff(completed_before)
        row = await self._db.fetchone(query("count_expired_runs"), {"cutoff": completed_before})
        assert row is not None
        return int(row["expired"])

    async def delete_expired_runs(self, completed_before: datetime, *, batch_size: int = 100) -> int:
        check_cutoff(completed_before)
        check_count(batch_size, "batch_size")
        row = await self._db.fetchone(query("delete_expired_runs"), {"cutoff": completed_before, "limit": batch_size})
        assert row is not None
        return int(row["deleted"])
