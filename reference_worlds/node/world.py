"""``NodeWorld``: the whole World protocol, answered by an npm World in a Node process.

Each method is one RPC: the arguments are shaped as upstream's TypeScript
interface takes them (:mod:`.convert`), the answer is turned back into our
records, and an error is translated into our typed errors (:mod:`.errors`).
Queue handlers stay in Python: the shim hands every delivery of the World to
:meth:`NodeWorld._deliver` and turns the handler's outcome into the reply the
World's own queue handler gives (ack, ``timeoutSeconds``, or an error status).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worlds_sdk import codec, errors
from worlds_sdk.backend import WorldConfig
from worlds_sdk.models import (
    ChunkPage,
    Enqueued,
    Event,
    EventRequest,
    EventResult,
    Hook,
    MessageMeta,
    Page,
    Pagination,
    Reschedule,
    ResolveData,
    Run,
    RunStatus,
    Step,
    StreamInfo,
)
from worlds_sdk.protocols import QueueHandler

from . import convert
from .errors import NodeProcessError, translate
from .process import NodeProcess, ShimError
from .runtime import find_node

_NOT_FOUND_BY_EVENT = {
    "step": errors.StepNotFoundError,
    "hook": errors.HookNotFoundError,
    "wait": errors.WaitNotFoundError,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """What opens one npm World: the installed package, its factory, and the instance's environment."""

    package: str
    version: str
    install_dir: str
    cwd: str
    factory: str | None = None
    spec_version: int = 3
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, config: WorldConfig) -> NodeConfig:
        try:
            return cls(**dict(config))
        except TypeError as exc:
            raise errors.ValidationError(str(exc), field="config") from None


class NodeWorld:
    """A World implemented by an npm package, driven through ``node`` (see the module docstring)."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = NodeConfig.from_mapping(config)
        self.spec_version = self.config.spec_version
        self.runs = _Runs(self)
        self.steps = _Steps(self)
        self.events = _Events(self)
        self.hooks = _Hooks(self)
        self._process: NodeProcess | None = None
        self._opening: asyncio.Lock | None = None
        self._handlers: dict[str, QueueHandler] = {}
        self._registered: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._streams: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._stream_ids = itertools.count(1)
        self._closed = False
        self.node_version: str | None = None

    # -- the process ----------------------------------------------------------

    async def _node(self) -> NodeProcess:
        self._check_open()
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._process is None:
                process = NodeProcess(
                    find_node(),
                    Path(self.config.install_dir),
                    self.config.package,
                    self.config.factory,
                    env=self.config.env,
                    cwd=Path(self.config.cwd),
                    on_notification=self._notified,
                    on_exit=self._exited,
                )
                await process.start()
                self._process = process
                try:
                    info = await process.call("bridge.open")
                except ShimError as exc:
                    raise NodeProcessError(
                        f"{self.config.package}@{self.config.version} failed to load: {exc}\n{process.stderr_tail()}"
                    ) from None
                self.node_version = info.get("node")
                if info.get("writeToStreamMulti"):
                    self.write_to_stream_many = self._write_many
            for prefix in set(self._handlers) - self._registered:
                self._registered.add(prefix)
                await self._process.call("bridge.register", prefix)
            return self._process

    def _check_open(self) -> None:
        """After ``close()`` the Node process is gone: the bridge itself answers every call (LC-1)."""
        if self._closed:
            raise errors.WorldUnavailableError("the World is closed")

    async def call(self, method: str, *args: Any, not_found: type[errors.NotFoundError] = errors.NotFoundError) -> Any:
        """One method of the JS World; its answer decoded, its error translated."""
        process = await self._node()
        try:
            return await process.call(method, *args)
        except ShimError as exc:
            raise translate(exc.description, not_found, process.stderr_tail) from None

    async def ping(self) -> None:
        """A no-op round trip through the shim: the bridge's own overhead (``worlds bench``)."""
        process = await self._node()
        await process.call("bridge.ping")

    async def start(self) -> None:
        await self._node()
        await self.call("bridge.start")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._process is not None:
            try:
                await self._process.close()
            except ShimError as exc:
                raise translate(exc.description, errors.NotFoundError, self._process.stderr_tail) from None

    # -- queue ----------------------------------------------------------------

    async def get_deployment_id(self) -> str:
        return str(await self.call("getDeploymentId"))

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
        opts = convert.options(
            deployment_id=deployment_id,
            idempotency_key=idempotency_key,
            delay_seconds=delay_seconds,
            headers=dict(headers) if headers is not None else None,
        )
        result = await self.call("bridge.send", queue_name, message, opts)
        return Enqueued(message_id=str(result["messageId"]))

    def register_handler(self, prefix: str, handler: QueueHandler) -> None:
        self._check_open()
        self._handlers[prefix] = handler
        if self._process is not None:
            self._spawn(self._node())

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notified(self, message: dict[str, Any]) -> None:
        if "deliver" in message:
            self._spawn(self._deliver(message))
        elif "stream" in message:
            queue = self._streams.get(int(message["stream"]))
            if queue is not None:
                queue.put_nowait(message)

    def _exited(self, error: NodeProcessError) -> None:
        for queue in self._streams.values():
            queue.put_nowait({"exit": str(error)})

    async def _deliver(self, notification: dict[str, Any]) -> None:
        meta = notification["meta"]
        handler = self._handlers.get(notification["prefix"])
        outcome: dict[str, Any]
        try:
            if handler is None:
                raise LookupError(f"no handler for {notification['prefix']}")
            message = codec.from_wire(notification["message"])
            if notification.get("own") and isinstance(message, dict):
                message = convert.snake_keys(message)  # upstream's payload ({runId}) in our names ({run_id})
            answer = await handler(
                message,
                MessageMeta(
                    message_id=meta["messageId"],
                    queue_name=meta["queueName"],
                    attempt=int(meta["attempt"]),
                    headers=dict(meta.get("headers") or {}),
                ),
            )
            outcome = {"timeoutSeconds": answer.timeout_seconds} if isinstance(answer, Reschedule) else {"ack": True}
        except Exception as exc:
            outcome = {"error": f"{type(exc).__name__}: {exc}"}
        if self._process is not None:
            await self._process.notify({"delivered": notification["deliver"], "outcome": outcome})

    # -- streams --------------------------------------------------------------

    async def write_to_stream(self, name: str, run_id: str, chunk: bytes | str) -> None:
        await self.call("writeToStream", name, run_id, chunk, not_found=errors.StreamNotFoundError)

    async def _write_many(self, name: str, run_id: str, chunks: Sequence[bytes | str]) -> None:
        await self.call("writeToStreamMulti", name, run_id, list(chunks), not_found=errors.StreamNotFoundError)

    async def close_stream(self, name: str, run_id: str) -> None:
        await self.call("closeStream", name, run_id, not_found=errors.StreamNotFoundError)

    async def read_from_stream(self, name: str, start_index: int = 0) -> AsyncIterator[bytes]:
        stream_id = next(self._stream_ids)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._streams[stream_id] = queue
        ended = False
        try:
            await self.call("bridge.read", stream_id, name, start_index, not_found=errors.StreamNotFoundError)
            while True:
                item = await queue.get()
                if "chunk" in item:
                    yield bytes(codec.from_wire(item["chunk"]))
                elif "end" in item:
                    ended = True
                    return
                elif "exit" in item:
                    ended = True
                    raise NodeProcessError(item["exit"])
                else:
                    ended = True
                    assert self._process is not None
                    raise translate(item["error"], errors.StreamNotFoundError, self._process.stderr_tail)
        finally:
            del self._streams[stream_id]
            if not ended and self._process is not None and not self._closed:
                self._spawn(self._process.call("bridge.cancel", stream_id))

    async def list_streams_by_run_id(self, run_id: str) -> Sequence[str]:
        return list(await self.call("listStreamsByRunId", run_id))

    async def get_stream_chunks(
        self, name: str, run_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> ChunkPage:
        options = convert.options(limit=limit, cursor=cursor)
        data = await self.call("getStreamChunks", name, run_id, options, not_found=errors.StreamNotFoundError)
        return convert.chunk_page(data)

    async def get_stream_info(self, name: str, run_id: str) -> StreamInfo:
        return convert.stream_info(await self.call("getStreamInfo", name, run_id, not_found=errors.StreamNotFoundError))


class _Runs:
    def __init__(self, world: NodeWorld) -> None:
        self._world = world

    async def get(self, run_id: str, *, resolve_data: ResolveData = "all") -> Run:
        data = await self._world.call(
            "runs.get", run_id, {"resolveData": resolve_data}, not_found=errors.WorkflowRunNotFoundError
        )
        return convert.run(data)

    async def list(
        self,
        *,
        workflow_name: str | None = None,
        status: RunStatus | None = None,
        pagination: Pagination = Pagination(),
        resolve_data: ResolveData = "all",
    ) -> Page[Run]:
        params = convert.options(
            workflow_name=workflow_name,
            status=status,
            pagination=convert.pagination(pagination),
            resolve_data=resolve_data,
        )
        return convert.page(await self._world.call("runs.list", params), convert.run)


class _Steps:
    def __init__(self, world: NodeWorld) -> None:
        self._world = world

    async def get(self, run_id: str | None, step_id: str, *, resolve_data: ResolveData = "all") -> Step:
        data = await self._world.call(
            "steps.get", run_id, step_id, {"resolveData": resolve_data}, not_found=errors.StepNotFoundError
        )
        return convert.step(data)

    async def list(
        self, run_id: str, *, pagination: Pagination = Pagination(), resolve_data: ResolveData = "all"
    ) -> Page[Step]:
        params = convert.options(run_id=run_id, pagination=convert.pagination(pagination), resolve_data=resolve_data)
        return convert.page(await self._world.call("steps.list", params), convert.step)


class _Events:
    def __init__(self, world: NodeWorld) -> None:
        self._world = world

    async def create(
        self, run_id: str | None, request: EventRequest, *, resolve_data: ResolveData = "all"
    ) -> EventResult:
        not_found = _NOT_FOUND_BY_EVENT.get(request.event_type.split("_", 1)[0], errors.WorkflowRunNotFoundError)
        data = await self._world.call(
            "events.create",
            run_id,
            convert.event_request(request),
            {"resolveData": resolve_data},
            not_found=not_found,
        )
        return convert.event_result(data)

    async def get(self, run_id: str, event_id: str, *, resolve_data: ResolveData = "all") -> Event:
        data = await self._world.call(
            "events.get", run_id, event_id, {"resolveData": resolve_data}, not_found=errors.EventNotFoundError
        )
        return convert.event(data)

    async def list(
        self, run_id: str, *, pagination: Pagination = Pagination(), resolve_data: ResolveData = "all"
    ) -> Page[Event]:
        params = convert.options(run_id=run_id, pagination=convert.pagination(pagination), resolve_data=resolve_data)
        return convert.page(await self._world.call("events.list", params), convert.event)

    async def list_by_correlation_id(
        self,
        correlation_id: str,
        *,
        run_id: str | None = None,
        pagination: Pagination = Pagination(),
        resolve_data: ResolveData = "all",
    ) -> Page[Event]:
        params = convert.options(
            correlation_id=correlation_id,
            run_id=run_id,
            pagination=convert.pagination(pagination),
            resolve_data=resolve_data,
        )
        return convert.page(await self._world.call("events.listByCorrelationId", params), convert.event)


class _Hooks:
    def __init__(self, world: NodeWorld) -> None:
        self._world = world

    async def get(self, hook_id: str, *, resolve_data: ResolveData = "all") -> Hook:
        data = await self._world.call(
            "hooks.get", hook_id, {"resolveData": resolve_data}, not_found=errors.HookNotFoundError
        )
        return convert.hook(data)

    async def get_by_token(self, token: str, *, resolve_data: ResolveData = "all") -> Hook:
        data = await self._world.call(
            "hooks.getByToken", token, {"resolveData": resolve_data}, not_found=errors.HookNotFoundError
        )
        return convert.hook(data)

    async def list(
        self,
        *,
        run_id: str | None = None,
        pagination: Pagination = Pagination(),
        resolve_data: ResolveData = "all",
    ) -> Page[Hook]:
        params = convert.options(run_id=run_id, pagination=convert.pagination(pagination), resolve_data=resolve_data)
        return convert.page(await self._world.call("hooks.list", params), convert.hook)
