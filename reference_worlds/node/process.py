"""The Node child process and the JSON-lines RPC spoken with it.

One process per World object: it starts on first use, inside the event loop
that uses it (the suite runs each test in a fresh loop), and ends with
:meth:`NodeProcess.close`. Requests carry an id; the shim answers each with
``result`` or ``error``, and sends notifications (queue deliveries, stream
chunks) without one. If the process dies, every pending call fails at once
with :class:`NodeProcessError` naming the exit code and the end of its stderr,
so a crash is never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from worlds_sdk import codec

from .errors import NodeProcessError

SHIM = Path(__file__).with_name("shim.mjs")
STDERR_TAIL_LINES = 30
STOP_TIMEOUT = 10.0
LINE_LIMIT = 64 * 1024 * 1024
"""Largest protocol line accepted (a page of big payloads is one line)."""

Notification = Callable[[dict[str, Any]], Awaitable[None] | None]


class NodeProcess:
    """``node shim.mjs`` serving one World; :meth:`call` sends a request and awaits its answer."""

    def __init__(
        self,
        node: str,
        install_dir: Path,
        package: str,
        factory: str | None,
        *,
        env: Mapping[str, str],
        cwd: Path,
        on_notification: Notification,
        on_exit: Callable[[NodeProcessError], None],
    ) -> None:
        self._argv = [node, str(SHIM), str(install_dir), package, factory or ""]
        self._env = {**os.environ, **env}
        self._cwd = cwd
        self._on_notification = on_notification
        self._on_exit = on_exit
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stderr = tempfile.NamedTemporaryFile(prefix="worlds-node-", suffix=".log", delete=False)  # noqa: SIM115
        self._died: NodeProcessError | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            cwd=self._cwd,
            env=self._env,
            limit=LINE_LIMIT,
        )
        self._reader = asyncio.create_task(self._read(), name="node-bridge-reader")

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        try:
            text = Path(self._stderr.name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def call(self, method: str, *args: Any) -> Any:
        """Send one request; its ``result`` decoded, or the shim's error description raised as :class:`ShimError`."""
        if self._died is not None:
            raise self._died
        assert self._proc is not None and self._proc.stdin is not None, "start() first"
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self._write({"id": request_id, "method": method, "args": list(args)})
        return await future

    async def notify(self, message: Mapping[str, Any]) -> None:
        """A line without an answer (the outcome of a queue delivery)."""
        if self._died is None:
            await self._write(message)

    async def _write(self, message: Mapping[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        line = json.dumps(codec.to_wire(message), separators=(",", ":")) + "\n"
        try:
            self._proc.stdin.write(line.encode())
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            await self._wait_exit()
            raise self._died or NodeProcessError(f"writing to node failed: {exc}") from exc

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            while line := await self._proc.stdout.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not ours: a stray write to fd 1 by native code
                await self._dispatch(message)
        finally:
            await self._wait_exit()

    async def _dispatch(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        if request_id is None:
            outcome = self._on_notification(message)
            if outcome is not None:
                await outcome
            return
        future = self._pending.pop(request_id, None)
        if future is None or future.done():
            return
        if "error" in message:
            future.set_exception(ShimError(message["error"]))
        else:
            future.set_result(codec.from_wire(message.get("result")))

    async def _wait_exit(self) -> None:
        """Record how the process ended and fail every pending call with it."""
        assert self._proc is not None
        code = await self._proc.wait()
        if self._died is not None:
            return
        tail = self.stderr_tail()
        self._died = NodeProcessError(
            f"the Node process of the bridge exited with code {code}"
            + (f"; its stderr ends with:\n{tail}" if tail else " and wrote nothing to stderr")
        )
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._died)
        self._pending.clear()
        self._on_exit(self._died)

    async def close(self) -> None:
        """Ask the World to close, end stdin, and make sure the process is gone."""
        if self._proc is None:
            return
        try:
            if self._died is None:
                await asyncio.wait_for(self.call("bridge.close"), STOP_TIMEOUT)
        finally:
            if self._proc.stdin is not None and not self._proc.stdin.is_closing():
                self._proc.stdin.close()
            try:
                await asyncio.wait_for(self._proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                await self._proc.wait()
            if self._reader is not None:
                with contextlib.suppress(Exception):
                    await self._reader
            self._stderr.close()
            with contextlib.suppress(OSError):
                os.unlink(self._stderr.name)


class ShimError(Exception):
    """An error the shim reported for one request, before translation into our types."""

    def __init__(self, description: Mapping[str, Any]) -> None:
        self.description = dict(description)
        super().__init__(f"{description.get('name')}: {description.get('message')}")
