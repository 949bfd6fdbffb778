"""The reference local World: one directory, zero configuration, safe across processes and crashes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import Any

from worlds_sdk import SPEC_VERSION
from worlds_sdk.consumer import Backoff, Consumer
from worlds_sdk.errors import WorldUnavailableError
from worlds_sdk.inspection import ForwardsInspection
from worlds_sdk.models import ChunkPage, Enqueued, Run, StreamInfo
from worlds_sdk.protocols import QueueHandler
from worlds_sdk.queue_names import check_queue_prefix, workflow_queue
from worlds_sdk.queue_options import QueueOptions, check_queue_options

from .config import LocalConfig
from .database import Database
from .inspection import LocalInspection
from .queue import LocalQueue
from .records import decode
from .signals import Notifier
from .storage import LocalEvents, LocalHooks, LocalRuns, LocalSteps
from .streams import LocalStreams

RECOVERY_KEY = "recover:{run_id}"
"""Idempotency key of a recovery message, so repeated ``start()`` calls do not pile up (Q-6)."""


class LocalWorld(ForwardsInspection):
    """A World in a directory (``config['path']``, else ``$WORLDS_LOCAL_DIR``, else ``./.worlds``).

    Any number of instances, in one process or many, may open the same directory
    at once. ``start()`` and ``close()`` must run in the same event loop, the one
    the queue consumer runs in.
    """

    spec_version: int = SPEC_VERSION

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config = LocalConfig.from_mapping(config or {})
        self.directory = self.config.directory()
        self._db = Database(self.directory, busy_timeout=self.config.busy_timeout)
        self.runs = LocalRuns(self._db)
        self.steps = LocalSteps(self._db)
        self.events = LocalEvents(self._db, self.spec_version)
        self.hooks = LocalHooks(self._db)
        queued = Notifier()
        self._queue = LocalQueue(self._db, queued)
        self._inspection = LocalInspection(self._db, queued)
        self._streams = LocalStreams(self._db, Notifier(), self.config.poll_interval)
        self._consumer = Consumer(
            self._queue,
            lease_seconds=self.config.lease_seconds,
            poll_interval=self.config.poll_interval,
            concurrency=self.config.concurrency,
            max_attempts=self.config.max_attempts,
            handler_timeout=self.config.handler_timeout,
            backoff=Backoff(initial=self.config.backoff_initial, maximum=self.config.backoff_max),
            wakeup=queued.wait,
        )

    def __repr__(self) -> str:
        return f"LocalWorld({str(self.directory)!r})"

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Begin consuming for the registered handlers, and re-enqueue every pending or running run (Q-6)."""
        self._check_open()
        self._consumer.start()
        for (body,) in await self._db.read(
            lambda c: c.execute(
                "SELECT body FROM runs WHERE status IN ('pending', 'running') ORDER BY created_us"
            ).fetchall()
        ):
            run = decode(Run, body)
            # For the run's deployment: only the code that started a run can replay it.
            options = QueueOptions(
                deployment_id=run.deployment_id, idempotency_key=RECOVERY_KEY.format(run_id=run.run_id), delay_seconds=0
            )
            await self._queue.enqueue(workflow_queue(run.workflow_name), {"run_id": run.run_id}, options)

    async def close(self) -> None:
        """Stop consuming (running handlers get ``shutdown_grace`` seconds), then close the database."""
        if self._db.closed:
            return
        await self._consumer.stop(self.config.shutdown_grace)
        await self._db.close()

    def _check_open(self) -> None:
        if self._db.closed:
            raise WorldUnavailableError(f"the local World at {self.directory} is closed")

    async def get_deployment_id(self) -> str:
        return self.config.deployment_id

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
            queue_name, options.delay_seconds, partial(self._queue.enqueue, queue_name, message, options)
        )
        return Enqueued(message_id=message_id)

    def register_handler(self, prefix: str, handler: QueueHandler) -> None:
        self._check_open()
        check_queue_prefix(prefix)
        self._consumer.register(prefix, handler)

    # -- streams ------------------------------------------------------------

    async def write_to_stream(self, name: str, run_id: str, chunk: bytes | str) -> None:
        await self._streams.write(name, run_id, [chunk])

    async def write_to_stream_many(self, name: str, run_id: str, chunks: Sequence[bytes | str]) -> None:
        await self._streams.write(name, run_id, chunks)

    async def close_stream(self, name: str, run_id: str) -> None:
        await self._streams.close(name, run_id)

    def read_from_stream(self, name: str, start_index: int = 0) -> AsyncIterator[bytes]:
        self._check_open()
        return self._streams.follow(name, start_index)

    async def list_streams_by_run_id(self, run_id: str) -> Sequence[str]:
        return await self._streams.list_by_run(run_id)

    async def get_stream_chunks(
        self, name: str, run_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> ChunkPage:
        return await self._streams.chunks(name, run_id, limit=limit, cursor=cursor)

    async def get_stream_info(self, name: str, run_id: str) -> StreamInfo:
        return await self._streams.info(name, run_id)
