"""The fork server of the suite's child processes (``python -m conformance.forkserver``).

Starting Python and importing a World's code costs 0.3-0.5 s of CPU per child,
and the race tests take 6 and 12 children at once. This process imports the
World's code once, then forks each child on request: a child is still a process
of its own (its own pid, memory and connections, killed with a real SIGKILL),
that opens its test's instance for the first time, as :mod:`conformance.child`
describes; only the imports are inherited.

Requests arrive on a Unix socket, one JSON line each (the parent waits for each
answer): ``fork`` (with the child's stdin, stdout and stderr as file descriptors),
``kill`` and ``poll`` a pid. Children are reaped only when polled, so a pid the
parent may still signal is never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import traceback
from typing import Any

from worlds_sdk.backend import WorldBackend

from .child import import_world, serve

CHILD_ENV = "WORLDS_CONFORMANCE_FORKSERVER"


def _become_child(server: socket.socket, fds: list[int], backend: WorldBackend) -> None:
    """In the forked process: take the given stdin/stdout/stderr and serve the parent's commands; never returns."""
    code = 1
    try:
        server.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        asyncio.run(serve(backend))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: nothing left to say
                stream.flush()
        os._exit(code)


def _read_request(server: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """The next request line and the descriptors sent with it; ``None`` once the parent has gone."""
    data, fds = b"", list[int]()
    while not data.endswith(b"\n"):
        chunk, received, _, _ = socket.recv_fds(server, 4096, 3)
        if not chunk:
            return None, fds
        data += chunk
        fds += received
    return json.loads(data), fds


def main() -> None:
    spec = json.loads(os.environ[CHILD_ENV])
    backend = import_world(spec["reference"])
    server = socket.socket(fileno=spec["socket"])
    running: set[int] = set()
    ended: dict[int, int] = {}
    while True:
        request, fds = _read_request(server)
        if request is None:
            break
        reply: dict[str, Any] = {}
        pid = request.get("pid", 0)
        if request["op"] == "fork":
            pid = os.fork()
            if pid == 0:
                _become_child(server, fds, backend)
            for fd in fds:
                os.close(fd)
            running.add(pid)
            reply = {"pid": pid}
        elif request["op"] == "kill" and pid in running:
            os.kill(pid, signal.SIGKILL)
        elif request["op"] == "poll":
            if pid in running and (status := os.waitpid(pid, os.WNOHANG))[0]:
                running.discard(pid)
                ended[pid] = os.waitstatus_to_exitcode(status[1])
            reply = {"exit_code": ended.get(pid)}
        server.sendall((json.dumps(reply) + "\n").encode())
    for pid in running:  # the parent is gone: no child outlives the run
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
