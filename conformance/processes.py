"""Child processes that open the same World: for races, crashes and live readers.

A child is ``python -m conformance.child``: it imports the World's code, reads
the instance's config (its first command), opens the World, says ``ready``,
then executes JSON-line commands from stdin and answers on stdout. The parent
sends one command to many children at once to race them, or kills one with
SIGKILL mid-command.

Starting Python and importing a World's code costs 0.3-0.5 s of CPU per child,
and a race test takes a dozen. So :class:`Spares` keeps children started ahead
of need (imported, no World opened, no config yet), made while earlier tests
run; a test still gets processes of its own that open its instance for the
first time, and kills them as before.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import IO, Any

from worlds_sdk.backend import WorldConfig

CHILD_ENV = "WORLDS_CONFORMANCE_CHILD"
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class _Started:
    """A child process started outside any event loop, with the file its stderr goes to."""

    popen: subprocess.Popen[bytes]
    stderr: IO[bytes]


class Spares:
    """Children started ahead, for one World: each test that spawns takes from them.

    The pool grows to the most children one test has taken, and is topped up when
    the next test starts (:meth:`refill`), so a run whose tests spawn nothing, or
    one test alone, starts no spare.
    """

    def __init__(self, reference: str) -> None:
        self._reference = reference
        self._idle: list[_Started] = []
        self._wanted = 0
        self._taken = 0

    def _start(self) -> _Started:
        env = dict(os.environ)
        env[CHILD_ENV] = json.dumps({"reference": self._reference})
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the ChildProcess, closed by stop()
        popen = subprocess.Popen(
            [sys.executable, "-m", "conformance.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        return _Started(popen, stderr)

    def take(self) -> _Started:
        """A spare still alive, else a process started now."""
        self._taken += 1
        while self._idle:
            spare = self._idle.pop()
            if spare.popen.poll() is None:
                return spare
            spare.stderr.close()
        return self._start()

    def refill(self) -> None:
        """Top the pool up to the most children one test has taken so far."""
        self._wanted, self._taken = max(self._wanted, self._taken), 0
        while len(self._idle) < self._wanted:
            self._idle.append(self._start())

    def close(self) -> None:
        """End the spares nobody took (closing stdin would let them finish importing first)."""
        for spare in self._idle:
            spare.popen.kill()
        for spare in self._idle:
            spare.popen.wait()
            spare.stderr.close()
        self._idle.clear()


class AttachedProcess:
    """A child started outside the event loop, driven from it through asyncio streams on its pipes.

    asyncio ties a process it starts to one loop, and every test body has a loop of
    its own; a spare is started before the loop that uses it exists.
    """

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        transports: Sequence[asyncio.BaseTransport],
    ) -> None:
        self.popen = popen
        self.stdin = stdin
        self.stdout = stdout
        self._transports = transports

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def send_signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    async def wait(self) -> int:
        """The exit status, once the process has ended (it is not asyncio's child, so this polls)."""
        while (code := self.popen.poll()) is None:
            await asyncio.sleep(0.01)
        return code

    def close(self) -> None:
        for transport in self._transports:
            transport.close()


async def _attach(popen: subprocess.Popen[bytes]) -> AttachedProcess:
    loop = asyncio.get_running_loop()
    stdout = asyncio.StreamReader(limit=64 * 1024 * 1024)
    reading, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout), popen.stdout)
    writing, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), popen.stdin
    )
    stdin = asyncio.StreamWriter(writing, protocol, None, loop)
    return AttachedProcess(popen, stdin, stdout, (writing, reading))


class ChildProcess:
    """The parent's handle on one child."""

    def __init__(self, proc: AttachedProcess, name: str, stderr: IO[bytes]) -> None:
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
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def receive(self, kind: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """The next message (of ``kind``, skipping others); fails if the child dies or a command fails first."""
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
            self.proc.close()
            self._stderr.close()


async def spawn(
    spares: Spares, config: WorldConfig, name: str = "child", *, cleanup: AsyncExitStack | None = None
) -> ChildProcess:
    """A child (a spare if there is one) opens the instance of ``config``; returns once it has opened it.

    With ``cleanup``, the child is registered to be stopped before it is waited for,
    so a child that fails to get ready is never left running.
    """
    started = spares.take()
    child = ChildProcess(await _attach(started.popen), name, started.stderr)
    if cleanup is not None:
        cleanup.push_async_callback(child.stop)
    await child.send({"op": "open", "config": dict(config)})
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
