"""A World seeded with what an operator looks for: old completed runs, a stuck run, a dead letter."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from conformance.builders import hook_request, new_run, new_step, step_request, terminal_request, wait_request
from worlds_sdk.backend import WorldBackend
from worlds_sdk.protocols import InspectableWorld

QUEUE = "__wkf_step_seeded"


@dataclass(frozen=True)
class Seeded:
    completed: list[str]
    stuck: str
    dead_letter: str


async def _seed(backend: WorldBackend, config: dict[str, Any]) -> Seeded:
    world = backend.factory(config)
    try:
        completed = []
        for _ in range(3):
            run = await new_run(world, started=True)
            await new_step(world, run.run_id, "step_1", started=True)
            await world.events.create(run.run_id, step_request("step_completed", "step_1"))
            await world.events.create(run.run_id, terminal_request("completed"))
            completed.append(run.run_id)
        stuck = await new_run(world, started=True)
        await new_step(world, stuck.run_id, "charge", started=True)
        retry_after = datetime.now(UTC) - timedelta(minutes=5)
        await world.events.create(stuck.run_id, step_request("step_retrying", "charge", retry_after=retry_after))
        await world.events.create(stuck.run_id, hook_request("hook_created", "approval", token="tok_approval"))
        await world.events.create(
            stuck.run_id, wait_request("wait_created", "cooldown", datetime.now(UTC) + timedelta(hours=1))
        )
        await world.write_to_stream("log", stuck.run_id, b"charging\n")
        sent = await world.queue(QUEUE, {"order": 42})
        assert isinstance(world, InspectableWorld)
        await world.quarantine(sent.message_id, "ValueError: order 42 has no customer")
        return Seeded(completed=completed, stuck=stuck.run_id, dead_letter=sent.message_id)
    finally:
        await world.close()


def seed(backend: WorldBackend, config: dict[str, Any]) -> Seeded:
    return asyncio.run(_seed(backend, config))
