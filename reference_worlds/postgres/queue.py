"""The durable queue in PostgreSQL: enqueue, and :class:`~worlds_sdk.consumer.MessageStore` for the shared loop.

Delivery itself (handlers, heartbeats, back-off, dead-lettering decisions) is
:class:`worlds_sdk.consumer.Consumer`; this module only moves message rows. A
claim is one ``UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)`` (``claim_v1``),
so concurrent consumers in any number of processes never claim one message
twice and never wait on each other. Every later call is conditional on the
claim id, so a consumer that lost its lease cannot settle a message that another
consumer now holds. Times come from the database clock, one clock for all hosts.

Acks are grouped: those that arrive while an ack statement is in flight go
together in the next one (one round trip and one commit for the group), each
still answered for itself. At-least-once allows it: an ack not yet flushed when
the process dies only means a redelivery, exactly as if the handler had died.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from worlds_sdk.codec import dumps, from_wire
from worlds_sdk.consumer import Delivery
from worlds_sdk.ids import new_id
from worlds_sdk.queue_options import QueueOptions

from .database import Database, Row
from .nul_escape import escape_json
from .queries import query


async def enqueue(
    db: Database, queue_name: str, message: Any, options: QueueOptions, lease_seconds: float | None = None
) -> tuple[str, Delivery | None]:
    """Store one message (durable once this returns); the same unacked idempotency key gives the same id.

    With ``lease_seconds``, the message is stored already claimed by the caller
    (a hand-off, :meth:`worlds_sdk.consumer.Consumer.enqueue`) and its delivery is
    returned; no ``NOTIFY``, since no other consumer could claim it. An
    idempotency key held by a queued message returns that message's id instead,
    with no delivery. ``queue_name`` and ``options`` come checked from
    :func:`~worlds_sdk.queue_options.check_queue_options`.
    """
    params = {
        "message_id": new_id("msg"),
        "queue_name": queue_name,
        "body": escape_json(dumps(message)),
        "headers": escape_json(dumps(dict(options.headers))),
        "deployment_id": options.deployment_id,
        "idempotency_key": options.idempotency_key,
        "delay_seconds": options.delay_seconds,
    }
    if lease_seconds is not None:
        claimed = await db.fetchone(query("enqueue_claimed"), {**params, "lease_seconds": float(lease_seconds)})
        if claimed is not None:
            return claimed["message_id"], _delivery(claimed)
    row = await db.fetchone(query("enqueue"), params)  # the idempotency key is taken, or no hand-off
    assert row is not None
    return row["message_id"], None


def _delivery(row: Row) -> Delivery:
    return Delivery(
        message_id=row["message_id"],
        queue_name=row["queue_name"],
        message=from_wire(row["body"]),
        attempt=row["attempt"],
        failures=row["failures"],
        claim_id=row["claim_id"],
        headers=from_wire(row["headers"]),
        deployment_id=row["deployment_id"],
    )


class PostgresMessageStore:
    """Message rows under leases; see :mod:`worlds_sdk.consumer` for the contract."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._acks: list[tuple[Delivery, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Future[None] | None = None

    async def claim(self, prefixes: Sequence[str], lease_seconds: float, limit: int) -> Sequence[Delivery]:
        rows = await self._db.fetchall(
            query("claim"), {"prefixes": list(prefixes), "lease_seconds": float(lease_seconds), "limit": limit}
        )
        return [_delivery(row) for row in rows]

    async def extend_lease(self, delivery: Delivery, lease_seconds: float) -> bool:
        return await self._settle("extend_lease", delivery, seconds=float(lease_seconds))

    async def ack(self, delivery: Delivery) -> bool:
        acked: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._acks.append((delivery, acked))
        if self._flushing is None:  # else the flush in flight takes this one next
            self._flushing = asyncio.ensure_future(self._flush_acks())
        return await acked

    async def _flush_acks(self) -> None:
        """Ack every queued delivery in one statement, then those queued meanwhile, until none is left."""
        try:
            while self._acks:
                group, self._acks = self._acks, []
                try:
                    rows = await self._db.fetchall(
                        query("ack"),
                        {
                            "message_ids": [d.message_id for d, _ in group],
                            "claim_ids": [d.claim_id for d, _ in group],
                        },
                    )
                except BaseException as exc:
                    for _, acked in group:
                        if not acked.done():  # a cancelled waiter (its handler's task) wants no answer
                            acked.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise  # cancelled: the waiters have their answer
                    continue
                # As if sent one by one: a claim acked twice in a group is applied to the first ack only.
                done = {(row["message_id"], row["claim_id"]) for row in rows}
                for delivery, acked in group:
                    key = (delivery.message_id, delivery.claim_id)
                    if not acked.done():
                        acked.set_result(key in done)
                    done.discard(key)
        finally:
            self._flushing = None

    async def reschedule(self, delivery: Delivery, delay_seconds: float) -> bool:
        return await self._settle("reschedule", delivery, seconds=float(delay_seconds))

    async def fail(self, delivery: Delivery, *, delay_seconds: float, dead_letter: bool, error: str) -> bool:
        error = error.replace("\x00", "\\x00")  # text columns cannot hold NUL
        if dead_letter:
            return await self._settle("dead_letter", delivery, error=error)
        return await self._settle("fail", delivery, seconds=float(delay_seconds), error=error)

    async def _settle(self, name: str, delivery: Delivery, **params: Any) -> bool:
        row = await self._db.fetchone(
            query(name), {"message_id": delivery.message_id, "claim_id": delivery.claim_id, **params}
        )
        return row is not None
