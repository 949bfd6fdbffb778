"""A racing process for the Postgres World's tests (run as a script by ``conftest.Child``).

argv[1] is JSON: ``{"config": {...}, "op": "create_event" | "migrate", ...}``. The
child opens the World (one round trip, so the race is not about connecting),
prints ``ready``, waits for ``go`` on stdin, performs the op and prints one JSON
line with the outcome: ``{"ok": …}`` or ``{"error": "<SDK error class name>"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from reference_worlds.postgres import PostgresWorld, migrate
from worlds_sdk.codec import from_wire, to_wire
from worlds_sdk.errors import WorkflowWorldError
from worlds_sdk.models import EventRequest


async def create_event(world: PostgresWorld, spec: dict[str, Any]) -> dict[str, Any]:
    request = EventRequest(
        event_type=spec["event_type"],
        correlation_id=spec.get("correlation_id"),
        event_data=from_wire(spec.get("event_data")),
    )
    result = await world.events.create(spec["run_id"], request)
    assert result.event is not None
    return {"event_type": result.event.event_type, "event_data": to_wire(result.event.event_data)}


async def main(spec: dict[str, Any]) -> None:
    config = spec["config"]
    world = PostgresWorld(config)
    try:
        await world.get_deployment_id()
        if spec["op"] == "create_event":
            await world.runs.list()  # open the pool before the race
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        try:
            if spec["op"] == "migrate":
                outcome: dict[str, Any] = {"ok": migrate(config["url"], config["schema"])}
            else:
                outcome = {"ok": await create_event(world, spec)}
        except WorkflowWorldError as exc:
            outcome = {"error": type(exc).__name__, "message": str(exc)}
        print(json.dumps(outcome), flush=True)
    finally:
        await world.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
