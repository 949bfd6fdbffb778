"""The crash test's victims: processes that append a varied event history until SIGKILLed.

Run as ``python crash_writer.py <world-dir>``: a fork server. It imports the World
once, then serves commands on stdin, one per line:

- ``fork <seed> [committed]``: fork a writer process and print its pid; with
  ``committed``, only once the writer has committed its first event. Forking is
  safe here (this process has no threads and no open World); it makes a fresh
  writer cost milliseconds instead of a Python start-up, so a test can crash many
  of them. Without ``committed`` a crash may land while the World is opened or
  created; with it, among the writes, however slow the start-up (under load,
  opening the World and the first fsync took up to 0.17 s, longer than most crash
  delays, and a test could crash no write at all).
- ``forkmany <seed>``: the same, but the process runs 4 writers concurrently on one
  World, so their writes are group-committed (several events per transaction).
- ``reap <pid>``: wait for that writer to end and print ``signal <n>`` or ``exit <code>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from conformance.builders import hook_request, run_created_request, step_request, terminal_request, wait_request
from reference_worlds.local import LocalWorld
from worlds_sdk.models import EventRequest

WRITERS = {"fork": 1, "forkmany": 4}


async def write_concurrently(path: str, seed: int, server: int, writers: int, started: int) -> None:
    """Run ``writers`` writers on one World; the first commit writes a byte to the pipe ``started`` and closes it."""
    world = LocalWorld({"path": path})

    def committed() -> None:
        nonlocal started
        if started >= 0:
            with contextlib.suppress(BrokenPipeError):  # the server did not wait for it (no ``committed``)
                os.write(started, b"!")
            os.close(started)
            started = -1

    await asyncio.gather(*(write_forever(world, seed + k, server, committed) for k in range(writers)))


async def write_forever(world: LocalWorld, seed: int, server: int, committed: Callable[[], None]) -> None:
    """Append until killed -- or until the fork server is gone, so a writer never outlives its test."""
    rng = random.Random(seed)
    for i in range(1_000_000):
        if os.getppid() != server:
            return
        created = await world.events.create(None, run_created_request(rng.randbytes(rng.randint(0, 64))))
        assert created.run is not None
        committed()
        rid = created.run.run_id
        await world.events.create(rid, EventRequest(event_type="run_started"))
        for s in range(rng.randint(1, 3)):
            step = f"step_{i}_{s}"
            await world.events.create(rid, step_request("step_created", step))
            await world.events.create(rid, step_request("step_started", step))
            if rng.random() < 0.3:
                await world.events.create(rid, step_request("step_retrying", step))
                await world.events.create(rid, step_request("step_started", step))
            await world.events.create(rid, step_request(rng.choice(["step_completed", "step_failed"]), step))
        hook = f"hook_{seed}_{i}"
        claimed = await world.events.create(rid, hook_request("hook_created", hook, token=f"token_{i % 5}"))
        if claimed.hook is not None:  # else the token is held by a live hook of an earlier run: a conflict
            await world.events.create(rid, hook_request("hook_received", hook, payload=b"\x00payload"))
            if rng.random() < 0.5:
                await world.events.create(rid, hook_request("hook_disposed", hook))
        await world.events.create(rid, wait_request("wait_created", f"wait_{i}", datetime.now(UTC)))
        if rng.random() < 0.5:
            await world.events.create(rid, wait_request("wait_completed", f"wait_{i}"))
        if rng.random() < 0.7:
            await world.events.create(rid, terminal_request(rng.choice(["completed", "failed", "cancelled"])))


def serve(path: str) -> None:
    for line in sys.stdin:
        command, arg, *flags = line.split()
        if command in WRITERS:
            started, started_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(started)
                    asyncio.run(write_concurrently(path, int(arg), os.getppid(), WRITERS[command], started_w))
                finally:
                    os._exit(1)
            os.close(started_w)
            with os.fdopen(started, "rb") as first_commit:
                if flags == ["committed"]:
                    first_commit.read(1)  # empty if the writer died first: the test's reap then says how
            print(pid, flush=True)
        else:
            _, status = os.waitpid(int(arg), 0)
            if os.WIFSIGNALED(status):
                print(f"signal {os.WTERMSIG(status)}", flush=True)
            else:
                print(f"exit {os.WEXITSTATUS(status)}", flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
