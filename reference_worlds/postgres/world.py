"""The Postgres World: many processes on many hosts share one PostgreSQL schema.

Storage, queue and streams all live in the database, so a World object holds no
state of its own beyond connections: any number of them, in any processes, see
one World. ``start()`` is optional for clients that only use storage (the pool
opens, and migrations apply, on first use); it begins queue consumption and
re-enqueues the workflows of pending and running runs (Q-6).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import Any

from worlds_sdk import SPEC_VERSION
from worlds_sdk.consumer import Backoff, Consumer
from worlds_sdk.errors import WorldUnavailableError
from worlds_sdk.inspection import ForwardsInspection
from worlds_sdk.models import ChunkPage, Enqueued, StreamInfo
from worlds_sdk.protocols import QueueHandler
from worlds_sdk.queue_names import check_queue_prefix, workflow_queue
from worlds_sdk.queue_options import check_queue_options

from .config import PostgresConfig
from .database import Database
from .inspection import PostgresInspection
from .listener import ALL, Listener, Signals
from .queries import query
from .queue import PostgresMessageStore
from .storage import PostgresEvents, PostgresHooks, PostgresRuns, PostgresSteps
from .streams import PostgresStreams


class PostgresWorld(ForwardsInspection):
    """A World on one schema of one PostgreSQL database; build it with a config mapping."""

    spec_version: int = SPEC_VERSION

    def __init__(self, config: PostgresConfig | Mapping[str, Any]) -> None:
        self.config = config if isinstance(config, PostgresConfig) else PostgresConfig.from_mapping(config)
        self._db = Database(self.config)
        self._queue_signals = Signals(keep=[ALL])
        stream_signals = Signals()
        self._listener = Listener(
            self._db.connect,
            {f"{self.config.schema}.queue": self._queue_signals, f"{self.config.schema}.streams": stream_signals},
        )
        self._store = PostgresMessageStore(self._db)
        self._consumer = Consumer(
            self._store,
            lease_seconds=self.config.lease_seconds,
            poll_interval=self.config.poll_interval,
            concurrency=self.config.concurrency,
            max_attempts=self.config.max_attempts,
            handler_timeout=self.config.handler_timeout,
            backoff=Backoff(initial=self.config.backoff_initial, maximum=self.config.backoff_max),
            wakeup=self._queue_wakeup,
        )
        self._runs = PostgresRuns(self._db)
        self._steps = PostgresSteps(self._db)
        self._events = PostgresEvents(self._db)
        self._hooks = PostgresHooks(self._db)
        self._inspection = PostgresInspection(self._db)
        self._streams = PostgresStreams(self._db, stream_signals, self._listen, poll_interval=self.config.poll_interval)
        self._closed = False

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Migrate if needed, listen, re-enqueue pending/running runs (Q-6), begin consuming."""
        self._check_open()
        await self._db.pool()
        await self._listen()
        await self._db.fetchone(query("recover_runs"), {"queue_prefix": workflow_queue("")})
        self._consumer.start()

    async def close(self) -> None:
        """Stop consuming (running handlers get ``shutdown_grace`` seconds), stop listening, close the pool."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._consumer.stop(self.config.shutdown_grace)
        finally:
            await self._listener.stop()
            await self._db.close()

    def _check_open(self) -> None:
        if self._closed:
            raise WorldUnavailableError("this Postgres World is closed")

    async def _listen(self) -> None:
        self._check_open()
        self._listener.start()

    async def _queue_wakeup(self, timeout: float) -> bool:
        return await self._queue_signals.wait(timeout)

    async def get_deployment_id(self) -> str:
        return self.config.deployment_id

    # -- storage ------------------------------------------------------------

    @property
    def runs(self) -> PostgresRuns:
        return self._runs

    @property
    def steps(self) -> PostgresSteps:
        return self._steps

    @property
    def events(self) -> PostgresEvents:
        return self._events

    @property
    def hooks(self) -> PostgresHooks:
        return self._hooks

    # -- queue --------------------------------------------------------------

    async def queue(
        self,
        queue_name: str,
        message: Any,
        *,
        deployment_id: str | None = None,
        idempotency_key: str | None = None,
        delay_seconds: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Enqueued:
        options = check_queue_options(
            queue_name,
            deployment_id=deployment_id,
            idempotency_key=idempotency_key,
            delay_seconds=delay_seconds,
            headers=headers,
            world_deployment_id=self.config.deployment_id,
        )
        message_id = await self._consumer.enqueue(
            queue_name, options.delay_seconds, partial(self._store.enqueue, queue_name, message, options)
        )
        return Enqueued(message_id=message_id)

    def register_handler(self, prefix: str, handler: QueueHandler) -> None:
        self._check_open()
        check_queue_prefix(prefix)
        self._consumer.register(prefix, handler)

    # -- streams ------------------------------------------------------------

    async def write_to_stream(self, name: str, run_id: str, chunk: bytes | str) -> None:
        await self._streams.write_to_stream(name, run_id, chunk)

    async def write_to_stream_many(self, name: str, run_id: str, chunks: Sequence[bytes | str]) -> None:
        await self._streams.write_to_stream_many(name, run_id, chunks)

    async def close_stream(self, name: str, run_id: str) -> None:
        await self._streams.close_stream(name, run_id)

    def read_from_stream(self, name: str, start_index: int = 0) -> AsyncIterator[bytes]:
        return self._streams.read_from_stream(name, start_index)

    async def list_streams_by_run_id(self, run_id: str) -> Sequence[str]:
        return await self._streams.list_streams_by_run_id(run_id)

    async def get_stream_chunks(
        self, name: str, run_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> ChunkPage:
        return await self._streams.get_stream_chunks(name, run_id, limit=limit, cursor=cursor)

    async def get_stream_info(self, name: str, run_id: str) -> StreamInfo:
        return await self._streams.get_stream_info(name, run_id)
