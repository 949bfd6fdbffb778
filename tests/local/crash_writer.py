"""The crash test's victim: appends a varied event history to a local World until it is SIGKILLed.

Usage: ``python crash_writer.py <world-dir> <seed>``. Prints ``ready`` once the World is open.
"""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import UTC, datetime

from conformance.builders import hook_request, run_created_request, step_request, terminal_request, wait_request
from reference_worlds.local import LocalWorld
from worlds_sdk.models import EventRequest


async def main(path: str, seed: int) -> None:
    rng = random.Random(seed)
    world = LocalWorld({"path": path})
    print("ready", flush=True)
    for i in range(1_000_000):
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
        hook = f"hook_{i}"
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


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
