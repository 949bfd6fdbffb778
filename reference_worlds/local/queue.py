"""The durable queue: message rows in the world database, leased out to consumers.

A message row lives until it is acknowledged (or moved to ``dead_letters``), so
an accepted message survives handler errors, a consumer killed with SIGKILL and
World restarts (Q-1). Claiming is one write transaction that makes the row
invisible until its lease ends; a live handler's consumer keeps extending it,
a dead one's lease runs out and another consumer -- in any process -- claims
the row again (Q-5). Implements :class:`worlds_sdk.consumer.MessageStore`.
"""

from __future__ import annotations

import math
import sqlite3
import time
import uuid
from collections.abc import Sequence
from typing import Any

from worlds_sdk import codec
from worlds_sdk.consumer import Delivery
from worlds_sdk.errors import ValidationError
from worlds_sdk.ids import new_id
from worlds_sdk.queue_options import QueueOptions

from .database import Database
from .signals import Notifier


def now_us() -> int:
    return time.time_ns() // 1000


def _seconds(value: float | None, field: str) -> int:
    """Non-negative finite seconds as microseconds."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValidationError("must be a non-negative number of seconds", field=field)
    return int(value * 1_000_000)


class LocalQueue:
    """Enqueueing, and the :class:`~worlds_sdk.consumer.MessageStore` the consumer drives."""

    def __init__(self, db: Database, notifier: Notifier) -> None:
        self._db = db
        self._notifier = notifier

    async def enqueue(
        self, queue_name: str, message: Any, options: QueueOptions, lease_seconds: float | None = None
    ) -> tuple[str, Delivery | None]:
        """Store a message; while one with the same ``idempotency_key`` is unacknowledged, return its id (Q-3).

        With ``lease_seconds``, the message is stored already claimed by the caller
        (a hand-off, :meth:`worlds_sdk.consumer.Consumer.enqueue`), as :meth:`claim`
        would leave it, and its delivery is returned; no other consumer is woken,
        since none could claim it. ``queue_name`` and ``options`` come checked from
        :func:`~worlds_sdk.queue_options.check_queue_options`.
        """
        body = codec.dumps(message)
        headers = codec.dumps(dict(options.headers))
        delay = _seconds(options.delay_seconds, "delay_seconds")
        lease_us = None if lease_seconds is None else _seconds(lease_seconds, "lease_seconds")
        idempotency_key = options.idempotency_key

        def insert(conn: sqlite3.Connection) -> tuple[str, Delivery | None]:
            if idempotency_key is not None:
                sql = "SELECT message_id FROM messages WHERE idempotency_key = ?"
                row = conn.execute(sql, (idempotency_key,)).fetchone()
                if row is not None:
                    return str(row[0]), None
            message_id = new_id("msg")
            now = now_us()
            claim_id = None if lease_us is None else uuid.uuid4().hex
            conn.execute(
                "INSERT INTO messages (message_id, queue_name, body, headers, deployment_id, idempotency_key,"
                " attempt, claim_id, visible_us, created_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    queue_name,
                    body,
                    headers,
                    options.deployment_id,
                    idempotency_key,
                    0 if claim_id is None else 1,
                    claim_id,
                    now + (delay if lease_us is None else lease_us),
                    now,
                ),
            )
            if claim_id is None:
                return message_id, None
            delivery = Delivery(
                message_id=message_id,
                queue_name=queue_name,
                message=codec.loads(body),
                attempt=1,
                failures=0,
                claim_id=claim_id,
                headers=codec.loads(headers),
                deployment_id=options.deployment_id,
            )
            return message_id, delivery

        message_id, delivery = await self._db.write(insert)
        if delivery is None:
            self._notifier.notify()
        return message_id, delivery

    async def claim(self, prefixes: Sequence[str], lease_seconds: float, limit: int) -> Sequence[Delivery]:
        if not prefixes:
            return []
        match = " OR ".join("substr(queue_name, 1, ?) = ?" for _ in prefixes)
        sql = f"SELECT * FROM messages WHERE visible_us <= ? AND ({match}) ORDER BY visible_us, created_us LIMIT ?"
        matches = [v for p in prefixes for v in (len(p), p)]
        # Peek in a read transaction first: an idle poll must not take the write lock.
        if await self._db.read(lambda c: c.execute(sql, [now_us(), *matches, 1]).fetchone()) is None:
            return []
        lease_us = _seconds(lease_seconds, "lease_seconds")

        def lease(conn: sqlite3.Connection) -> list[Delivery]:
            now = now_us()
            claimed = []
            for row in conn.execute(sql, [now, *matches, limit]).fetchall():
                claim_id = uuid.uuid4().hex
                attempt = row["attempt"] + 1
                failures = row["failures"] + (row["claim_id"] is not None)  # its last holder's lease ran out
                conn.execute(
                    "UPDATE messages SET attempt = ?, failures = ?, claim_id = ?, visible_us = ? WHERE message_id = ?",
                    (attempt, failures, claim_id, now + lease_us, row["message_id"]),
                )
                claimed.append(
                    Delivery(
                        message_id=row["message_id"],
                        queue_name=row["queue_name"],
                        message=codec.loads(row["body"]),
                        attempt=attempt,
                        failures=failures,
                        claim_id=claim_id,
                        headers=codec.loads(row["headers"]),
                        deployment_id=row["deployment_id"],
                    )
                )
            return claimed

        return await self._db.write(lease)

    async def extend_lease(self, delivery: Delivery, lease_seconds: float) -> bool:
        until = now_us() + _seconds(lease_seconds, "lease_seconds")
        return await self._update(delivery, "UPDATE messages SET visible_us = ?", until)

    async def ack(self, delivery: Delivery) -> bool:
        """Delete the message; the commit need not be fsynced (``flush=False``).

        An ack lost in an OS crash leaves the message leased, so it is redelivered
        after its lease, as if its handler had died before acking (at-least-once,
        Q-1); a killed process loses nothing. The paced path gains the most: message
        *n*'s ack no longer holds message *n+1*'s enqueue behind an fsync.
        """
        return await self._update(delivery, "DELETE FROM messages", flush=False)

    async def reschedule(self, delivery: Delivery, delay_seconds: float) -> bool:
        visible = now_us() + _seconds(delay_seconds, "delay_seconds")
        applied = await self._update(delivery, "UPDATE messages SET claim_id = NULL, visible_us = ?", visible)
        self._notifier.notify()
        return applied

    async def fail(self, delivery: Delivery, *, delay_seconds: float, dead_letter: bool, error: str) -> bool:
        if not dead_letter:
            visible = now_us() + _seconds(delay_seconds, "delay_seconds")
            sql = "UPDATE messages SET claim_id = NULL, failures = failures + 1, visible_us = ?"
            return await self._update(delivery, sql, visible)

        def bury(conn: sqlite3.Connection) -> bool:
            moved = conn.execute(
                "INSERT INTO dead_letters (message_id, queue_name, body, headers, deployment_id, attempt, failures,"
                " error, dead_us) SELECT message_id, queue_name, body, headers, deployment_id, attempt, failures + 1,"
                " ?, ? FROM messages WHERE message_id = ? AND claim_id = ?",
                (error, now_us(), delivery.message_id, delivery.claim_id),
            ).rowcount
            conn.execute(
                "DELETE FROM messages WHERE message_id = ? AND claim_id = ?", (delivery.message_id, delivery.claim_id)
            )
            return moved == 1

        return await self._db.write(bury)

    async def _update(self, delivery: Delivery, statement: str, *values: int, flush: bool = True) -> bool:
        """Apply ``statement`` to the message only while ``delivery`` is its current claim."""
        sql = f"{statement} WHERE message_id = ? AND claim_id = ?"
        params = (*values, delivery.message_id, delivery.claim_id)
        return await self._db.write(lambda c: c.execute(sql, params).rowcount == 1, flush=flush)
