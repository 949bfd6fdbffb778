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
from collections.abc import Mapping
from typing import Any

from worlds_sdk.backend import WorldConfig

CHILD_ENV = "WORLDS_CONFORMANCE_CHILD"
READY_TIMEOUT = 60.0


class ChildProcess:
    """The parent's handle on one child."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name

    async def send(self, command: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def receive(self, kind: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """The next message (of ``kind``, skipping others); fails if the child dies first."""
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                err = b""
                if self.proc.stderr is not None:
                    err = await self.proc.stderr.read()
                raise RuntimeError(f"child {self.name} exited: {err.decode(errors='replace')[-2000:]}")
            message: dict[str, Any] = json.loads(line)
            if kind is None or message.get("kind") == kind:
                return message

    async def call(self, command: Mapping[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        await self.send(command)
        return await self.receive("result", timeout)

    def kill(self) -> None:
        """SIGKILL: the child gets no chance to clean up, as in a real crash."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.send({"op": "exit"})
                await asyncio.wait_for(self.proc.wait(), 15)
            except (TimeoutError, ConnectionError, BrokenPipeError):
                self.kill()
                await self.proc.wait()


async def spawn(reference: str, config: WorldConfig, name: str = "child") -> ChildProcess:
    """Start a child on the same World and wait until it has opened it."""
    env = dict(os.environ)
    env[CHILD_ENV] = json.dumps({"reference": reference, "config": dict(config)})
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "conformance.child",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        limit=64 * 1024 * 1024,
    )
    child = ChildProcess(proc, name)
    await child.receive("ready", READY_TIMEOUT)
    return child


async def spawn_many(reference: str, config: WorldConfig, n: int) -> list[ChildProcess]:
    return list(await asyncio.gather(*(spawn(reference, config, f"child-{i}") for i in range(n))))
