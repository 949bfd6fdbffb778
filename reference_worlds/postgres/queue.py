"""The durable queue in PostgreSQL: enqueue, and :class:`~worlds_sdk.consumer.MessageStore` for the shared loop.

Delivery itself (handlers, heartbeats, back-off, dead-lettering decisions) is
:class:`worlds_sdk.consumer.Consumer`; this module only moves message rows. A
claim is one ``UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)`` (``claim_v1``),
so concurrent consumers in any number of processes never claim one message
twice and never wait on each other. Every later call is conditional on the
claim id, so a consumer that lost its lease cannot settle a message that another
consumer now holds. Times come from the database clock, one clock for all hosts.

Acks and enqueues are grouped (:mod:`.grouped`): those that arrive while one
statement is in flight go together in the next one (one round trip and one
commit for the group), each still answered for itself. At-least-once allows it
for acks: an ack not yet flushed when the process dies only means a redelivery,
exactly as if the handler had died. An enqueue returns only once its group is
committed, so it is as durable as one sent alone; each message keeps its own
idempotency outcome (Q-3).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from worlds_sdk.codec import dumps, from_wire
from worlds_sdk.consumer import Delivery
from worlds_sdk.errors import WorldUnavailableError
from worlds_sdk.ids import new_id
from worlds_sdk.queue_options import QueueOptions

from .database import Database, Row
from .grouped import Grouped, Outcome
from .nul_escape import escape_json
from .queries import query

T = TypeVar("T")


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


@dataclass(frozen=True, slots=True)
class _Message:
    """One enqueue: its query parameters, and the lease of a hand-off (``None``: for any consumer)."""

    params: dict[str, Any]
    lease_seconds: float | None


async def _outcome(call: Awaitable[T]) -> Outcome[T]:
    try:
        return await call
    except Exception as exc:
        return exc


class PostgresMessageStore:
    """Message rows under leases; see :mod:`worlds_sdk.consumer` for the contract."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._enqueues: Grouped[_Message, tuple[str, Delivery | None]] = Grouped(self._enqueue_group)
        self._acks: Grouped[Delivery, bool] = Grouped(self._ack_group)

    async def enqueue(
        self, queue_name: str, message: Any, options: QueueOptions, lease_seconds: float | None = None
    ) -> tuple[str, Delivery | None]:
        """Store one message (durable once this returns); the same unacked idempotency key gives the same id.

        With ``lease_seconds``, the message is stored already claimed by the caller
        (a hand-off, :meth:`worlds_sdk.consumer.Consumer.enqueue`) and its delivery
        is returned; no ``NOTIFY`` for it, since no other consumer could claim it.
        An idempotency key held by a queued message returns that message's id,
        with no delivery. Enqueues are grouped (:mod:`.grouped`), each answered as
        if sent alone. ``queue_name`` and ``options`` come checked from
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
        return await self._enqueues(_Message(params, None if lease_seconds is None else float(lease_seconds)))

    async def _enqueue_one(self, message: _Message) -> tuple[str, Delivery | None]:
        if message.lease_seconds is not None:
            claimed = await self._db.fetchone(
                query("enqueue_claimed"), {**message.params, "lease_seconds": message.lease_seconds}
            )
            if claimed is not None:
                return claimed["message_id"], _delivery(claimed)
        row = await self._db.fetchone(query("enqueue"), message.params)  # the key is taken, or not a hand-off
        assert row is not None
        return row["message_id"], None

    async def _enqueue_group(self, group: Sequence[_Message]) -> list[Outcome[tuple[str, Delivery | None]]]:
        """One INSERT for the group; a message whose idempotency key is taken goes on alone, after it.

        If the INSERT fails, nothing of it was stored, so each message is sent alone for
        its own outcome -- unless the outcome is unknown (a lost connection), which
        fails the whole group as it would each message sent alone.
        """
        if len(group) == 1:
            return [await self._enqueue_one(group[0])]
        column = lambda key: [m.params[key] for m in group]  # noqa: E731
        try:
            rows = await self._db.fetchall(
                query("enqueue_many"),
                {
                    "message_ids": column("message_id"),
                    "queue_names": column("queue_name"),
                    "bodies": column("body"),
                    "headers": column("headers"),
                    "deployment_ids": column("deployment_id"),
                    "idempotency_keys": column("idempotency_key"),
                    "delays": column("delay_seconds"),
                    "leases": [m.lease_seconds for m in group],
                },
            )
        except WorldUnavailableError:
            raise
        except Exception:
            return [await _outcome(self._enqueue_one(message)) for message in group]
        inserted = {row["message_id"]: row for row in rows}
        outcomes: list[Outcome[tuple[str, Delivery | None]]] = []
        for message in group:
            row = inserted.get(message.params["message_id"])
            if row is None:  # its idempotency key is held: answered as if sent alone, after the group
                outcomes.append(await _outcome(self._enqueue_one(message)))
            else:
                outcomes.append((row["message_id"], None if row["claim_id"] is None else _delivery(row)))
        return outcomes

    async def claim(self, prefixes: Sequence[str], lease_seconds: float, limit: int) -> Sequence[Delivery]:
        rows = await self._db.fetchall(
            query("claim"), {"prefixes": list(prefixes), "lease_seconds": float(lease_seconds), "limit": limit}
        )
        return [_delivery(row) for row in rows]

    async def extend_lease(self, delivery: Delivery, lease_seconds: float) -> bool:
        return await self._settle("extend_lease", delivery, seconds=float(lease_seconds))

    async def ack(self, delivery: Delivery) -> bool:
        return await self._acks(delivery)

    async def _ack_group(self, group: Sequence[Delivery]) -> list[Outcome[bool]]:
        """Ack a group in one statement; as if sent one by one, a claim acked twice is applied to the first ack only."""
        rows = await self._db.fetchall(
            query("ack"),
            {"message_ids": [d.message_id for d in group], "claim_ids": [d.claim_id for d in group]},
        )
        done = {(row["message_id"], row["claim_id"]) for row in rows}
        outcomes: list[Outcome[bool]] = []
        for delivery in group:
            key = (delivery.message_id, delivery.claim_id)
            outcomes.append(key in done)
            done.discard(key)
        return outcomes

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
