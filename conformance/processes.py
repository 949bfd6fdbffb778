"""Child processes that open the same World: for races, crashes and live readers.

A child is ``python -m conformance.child``: it opens the World under test from
the same reference and config, says ``ready``, then executes JSON-line commands
from stdin and answers on stdout. The parent sends one command to many children
at once to race them, or kills one with SIGKILL mid-command.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from typing import IO, Any

from worlds_sdk.backend import WorldConfig

CHILD_ENV = "WORLDS_CONFORMANCE_CHILD"
READY_TIMEOUT = 60.0


class ChildProcess:
    """The parent's handle on one child."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, stderr: IO[bytes]) -> None:
        self.proc = proc
        self.name = name
        self._stderr = stderr
        self.skipped: list[dict[str, Any]] = []
        """Messages :meth:`receive` passed over while waiting for another kind."""

    def stderr_tail(self, size: int = 2000) -> str:
        """The end of what the child wrote to stderr (kept in a file, so a chatty child never blocks)."""
        self._stderr.flush()
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - size))
        return self._stderr.read().decode(errors="replace")

    async def send(self, command: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def receive(self, kind: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """The next message (of ``kind``, skipping others); fails if the child dies or a command fails first."""
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                raise RuntimeError(f"child {self.name} exited; its stderr ends with: {self.stderr_tail()}")
            message: dict[str, Any] = json.loads(line)
            if kind is None or message.get("kind") == kind:
                return message
            if message.get("kind") == "result" and not message.get("ok", True):
                raise RuntimeError(f"child {self.name}: a command failed while waiting for {kind!r}: {message}")
            self.skipped.append(message)

    async def call(self, command: Mapping[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        await self.send(command)
        return await self.receive("result", timeout)

    def kill(self) -> None:
        """SIGKILL: the child gets no chance to clean up, as in a real crash."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        try:
            if self.proc.returncode is None:
                try:
                    await self.send({"op": "exit"})
                    await asyncio.wait_for(self.proc.wait(), 15)
                except (TimeoutError, ConnectionError, BrokenPipeError):
                    self.kill()
                    await self.proc.wait()
        finally:
            self._stderr.close()


async def spawn(
    reference: str, config: WorldConfig, name: str = "child", *, cleanup: AsyncExitStack | None = None
) -> ChildProcess:
    """Start a child on the same World and wait until it has opened it.

    With ``cleanup``, the child is registered to be stopped before it is waited for,
    so a child that fails to get ready is never left running.
    """
    env = dict(os.environ)
    env[CHILD_ENV] = json.dumps({"reference": reference, "config": dict(config)})
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the ChildProcess, closed by stop()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "conformance.child",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=env,
        limit=64 * 1024 * 1024,
    )
    child = ChildProcess(proc, name, stderr)
    if cleanup is not None:
        cleanup.push_async_callback(child.stop)
    await child.receive("ready", READY_TIMEOUT)
    return child


async def race(
    commands: Sequence[tuple[ChildProcess, Mapping[str, Any]]], *, lead: float = 0.5
) -> list[dict[str, Any]]:
    """Send each child its command with one shared start time, so they really run at once.

    Commands are delivered one by one; the ``at`` time (``lead`` seconds ahead) makes
    every child wait until the same instant before it acts.
    """
    at = time.time() + lead
    return list(await asyncio.gather(*(child.call({**cmd, "at": at}) for child, cmd in commands)))
