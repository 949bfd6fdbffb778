"""Child processes that open the same World: for races, crashes and live readers.

A child is forked by the suite's fork server (:mod:`conformance.forkserver`,
which has imported the World's code once): it reads the instance's config (its
first command), opens the World, says ``ready``, then executes JSON-line commands
from stdin and answers on stdout. The parent sends one command to many children
at once to race them, or kills one with SIGKILL mid-command.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from typing import IO, Any

from worlds_sdk.backend import WorldConfig

from .forkserver import CHILD_ENV

READY_TIMEOUT = 60.0
REQUEST_TIMEOUT = 10.0
"""Seconds a fork server that has imported the World's code may take to answer a request."""
CLOSE_TIMEOUT = 30.0
"""Seconds the fork server may take to end its children and exit once closed."""
POLL_INTERVAL = 0.01
"""How often a wait for a child's exit asks the fork server (it is the child's parent, not us)."""


class Forkserver:
    """The parent's handle on the fork server of one World, started at the first fork.

    Requests are blocking round trips on a Unix socket (the server answers at once,
    except the first, which waits for its imports); they run in a thread, one at a time.
    """

    def __init__(self, reference: str) -> None:
        self._reference = reference
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._answered = 0
        self._broken: RuntimeError | None = None

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env[CHILD_ENV] = json.dumps({"reference": self._reference, "socket": theirs.fileno()})
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        with theirs:
            self._server = subprocess.Popen(
                [sys.executable, "-m", "conformance.forkserver"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                env=env,
                pass_fds=[theirs.fileno()],
            )
        self._socket = ours
        return ours

    def request(self, request: Mapping[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        """One round trip; bounded, so a fork server that stops answering fails the test, not the session.

        The first request waits for the server's imports (``READY_TIMEOUT``), the
        others get ``REQUEST_TIMEOUT``. After a timeout the conversation is out of step,
        so every later request fails with the same error.
        """
        with self._lock:
            if self._broken is not None:
                raise self._broken
            server = self._socket or self._start()
            server.settimeout(READY_TIMEOUT if self._answered == 0 else REQUEST_TIMEOUT)
            try:
                socket.send_fds(server, [(json.dumps(request) + "\n").encode()], list(fds))
                answer = b""
                while not answer.endswith(b"\n"):
                    chunk = server.recv(4096)
                    if not chunk:
                        raise RuntimeError(f"the fork server exited; its stderr: {self._stderr_tail()!r}")
                    answer += chunk
            except TimeoutError:
                self._broken = RuntimeError(
                    f"the fork server did not answer {request['op']!r} in time; its stderr: {self._stderr_tail()!r}"
                )
                raise self._broken from None
            self._answered += 1
        reply: dict[str, Any] = json.loads(answer)
        return reply

    def _stderr_tail(self) -> bytes:
        self._stderr.seek(0)
        return self._stderr.read()[-2000:]

    async def call(self, request: Mapping[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        return await asyncio.to_thread(self.request, request, fds)

    def close(self) -> None:
        """Closing the socket ends the server, which kills any child still running."""
        if self._socket is not None:
            self._socket.close()
        if self._server is not None:
            try:
                self._server.wait(CLOSE_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        self._stderr.close()


class ForkedProcess:
    """A child of the fork server, driven from the current event loop through asyncio streams on its pipes."""

    def __init__(
        self,
        pid: int,
        forkserver: Forkserver,
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        transports: Sequence[asyncio.BaseTransport],
    ) -> None:
        self.pid = pid
        self._forkserver = forkserver
        self.stdin = stdin
        self.stdout = stdout
        self._transports = transports
        self.returncode: int | None = None
        """The exit code, once a wait has seen the process end."""

    def kill(self) -> None:
        """SIGKILL (the fork server sends it: until it reaps the child, the pid is the child's)."""
        if self.returncode is None:
            self._forkserver.request({"op": "kill", "pid": self.pid})

    async def wait(self) -> int:
        while self.returncode is None:
            self.returncode = (await self._forkserver.call({"op": "poll", "pid": self.pid}))["exit_code"]
            if self.returncode is None:
                await asyncio.sleep(POLL_INTERVAL)
        return self.returncode

    def close(self) -> None:
        for transport in self._transports:
            transport.close()


async def fork(forkserver: Forkserver, stderr: IO[bytes]) -> ForkedProcess:
    """A new child of the fork server, its stdin and stdout attached to the running loop.

    The request runs in a thread that owns the child's ends of the pipes (and its
    own copy of ``stderr``'s descriptor) and closes them once they are sent: if the
    caller is cancelled meanwhile, the descriptors cannot be closed -- and their
    numbers reused -- before the thread sends them. A child forked for a cancelled
    caller reads end-of-file on stdin and exits.
    """
    loop = asyncio.get_running_loop()
    child_stdin, stdin = os.pipe()
    stdout, child_stdout = os.pipe()
    child_stderr = os.dup(stderr.fileno())

    def request() -> int:
        try:
            pid: int = forkserver.request({"op": "fork"}, [child_stdin, child_stdout, child_stderr])["pid"]
            return pid
        finally:
            for fd in (child_stdin, child_stdout, child_stderr):
                os.close(fd)

    sending = asyncio.ensure_future(asyncio.to_thread(request))
    sending.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen even if we stop waiting
    try:
        pid = await asyncio.shield(sending)
    except BaseException:
        os.close(stdin)
        os.close(stdout)
        raise
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    reading, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(stdout, "rb", buffering=0)
    )
    writing, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), os.fdopen(stdin, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(writing, protocol, None, loop)
    return ForkedProcess(pid, forkserver, writer, reader, (writing, reading))


class ChildProcess:
    """The parent's handle on one child."""

    def __init__(self, proc: ForkedProcess, name: str, stderr: IO[bytes]) -> None:
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
        self.proc.kill()

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
    forkserver: Forkserver, config: WorldConfig, name: str = "child", *, cleanup: AsyncExitStack | None = None
) -> ChildProcess:
    """Fork a child that opens the instance of ``config``; returns once it has opened it.

    With ``cleanup``, the child is registered to be stopped before it is waited for,
    so a child that fails to get ready is never left running.
    """
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the ChildProcess, closed by stop()
    try:
        proc = await fork(forkserver, stderr)
    except BaseException:
        stderr.close()
        raise
    child = ChildProcess(proc, name, stderr)
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
