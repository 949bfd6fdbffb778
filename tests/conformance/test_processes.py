"""Children forked by the fork server: real processes of their own, killed for real, never left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

import pytest

from conformance import processes
from conformance.processes import ChildProcess, Forkserver, fork


async def _child(forkserver: Forkserver, config: dict[str, object] | None) -> ChildProcess:
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by ChildProcess.stop
    child = ChildProcess(await fork(forkserver, stderr), "child", stderr)
    await child.send({"op": "open", **({"config": config} if config is not None else {})})
    return child


def test_a_sigkilled_child_dies_of_sigkill_and_its_stdout_ends(tmp_path: Path) -> None:
    async def body(forkserver: Forkserver) -> None:
        child = await _child(forkserver, {"path": str(tmp_path / "world")})
        ready = await child.receive("ready")
        assert ready["pid"] == child.proc.pid != os.getpid()
        child.kill()
        assert await child.proc.wait() == -signal.SIGKILL
        assert await child.proc.stdout.read() == b""
        await child.stop()

    _with_forkserver(body)


def test_a_child_that_cannot_open_says_why() -> None:
    async def body(forkserver: Forkserver) -> None:
        child = await _child(forkserver, None)
        with pytest.raises(RuntimeError, match="KeyError: 'config'"):
            await child.receive("ready")
        assert await child.proc.wait() == 1
        await child.stop()

    _with_forkserver(body)


def test_closing_the_fork_server_ends_the_children_still_running(tmp_path: Path) -> None:
    forkserver = Forkserver("local")

    async def body() -> int:
        child = await _child(forkserver, {"path": str(tmp_path / "world")})
        pid: int = (await child.receive("ready"))["pid"]
        child.proc.close()
        return pid

    try:
        pid = asyncio.run(body())
    finally:
        forkserver.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _with_forkserver(body: object) -> None:
    forkserver = Forkserver("local")
    try:
        asyncio.run(body(forkserver))  # type: ignore[operator]
    finally:
        forkserver.close()


def test_a_fork_server_that_stops_answering_fails_each_request_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wedged fork server (here: a World whose import never ends) fails the test that asked, not the session."""
    (tmp_path / "wedged_world.py").write_text("import time\ntime.sleep(600)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(processes, "READY_TIMEOUT", 0.5)
    monkeypatch.setattr(processes, "CLOSE_TIMEOUT", 0.5)
    forkserver = Forkserver("wedged_world:backend")
    try:
        with pytest.raises(RuntimeError, match="did not answer 'fork' in time"):
            forkserver.request({"op": "fork"})
        with pytest.raises(RuntimeError, match="did not answer 'fork' in time"):  # out of step for good
            forkserver.request({"op": "poll", "pid": 1})
    finally:
        forkserver.close()  # the server is killed after CLOSE_TIMEOUT
