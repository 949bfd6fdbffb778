"""The crash test's victims: processes that append a varied event history until SIGKILLed.

Run as ``python crash_writer.py <world-dir>``: a fork server. It imports the World
once, then serves commands on stdin, one per line:

- ``fork <seed>``: fork a writer process and print its pid. Forking is safe here
  (this process has no threads and no open World); it makes a fresh writer cost
  milliseconds instead of a Python start-up, so a test can crash many of them.
- ``forkmany <seed>``: the same, but the process runs 4 writers concurrently on one
  World, so their writes are group-committed (several events per transaction).
- ``reap <pid>``: wait for that writer to end and print ``signal <n>`` or ``exit <code>``.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from datetime import UTC, datetime

from conformance.builders import hook_request, run_created_request, step_request, terminal_request, wait_request
from reference_worlds.local import LocalWorld
from worlds_sdk.models import EventRequest

WRITERS = {"fork": 1, "forkmany": 4}


async def write_concurrently(path: str, seed: int, server: int, writers: int) -> None:
    world = LocalWorld({"path": path})
    await asyncio.gather(*(write_forever(world, seed + k, server) for k in range(writers)))


async def write_forever(world: LocalWorld, seed: int, server: int) -> None:
    """Append until killed -- or until the fork server is gone, so a writer never outlives its test."""
    rng = random.Random(seed)
    for i in range(1_000_000):
        if os.getppid() != server:
            return
        created = await world.events.create(None, run_created_request(rng.randbytes(rng.randint(0, 64))))
        assert created.run is not None
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
        command, arg = line.split()
        if command in WRITERS:
            pid = os.fork()
            if pid == 0:
                try:
                    asyncio.run(write_concurrently(path, int(arg), os.getppid(), WRITERS[command]))
                finally:
                    os._exit(1)
            print(pid, flush=True)
        else:
            _, status = os.waitpid(int(arg), 0)
            if os.WIFSIGNALED(status):
                print(f"signal {os.WTERMSIG(status)}", flush=True)
            else:
                print(f"exit {os.WEXITSTATUS(status)}", flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
