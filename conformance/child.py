"""The child-process side of :mod:`conformance.processes`: what a child forked by :mod:`conformance.forkserver` runs."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import os
import sys
import time
from typing import Any

from worlds_sdk.backend import WorldBackend
from worlds_sdk.discovery import resolve_world
from worlds_sdk.models import EventRequest, MessageMeta
from worlds_sdk.protocols import World

from .deadlines import Deadlines, WorldHung
from .history import DeliveryLog
from .wire import outcome_to_wire, request_from_wire


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def create_event(world: World, cmd: dict[str, Any]) -> dict[str, Any]:
    """One ``events.create``; with ``at``, first wait until that wall-clock time (a race start)."""
    await world.runs.list()  # open connections and warm caches before the start line
    if "at" in cmd:
        await asyncio.sleep(max(0.0, cmd["at"] - time.time()))
    try:
        result = await world.events.create(cmd["run_id"], request_from_wire(cmd["request"]))
    except Exception as exc:
        return outcome_to_wire(None, exc)
    return outcome_to_wire(result, None)


async def consume(world: World, cmd: dict[str, Any]) -> dict[str, Any]:
    """Record each delivery, hold it for ``hold`` seconds (so it can be killed mid-handler), ack."""
    log = DeliveryLog(cmd["log"])
    hold = float(cmd.get("hold", 0))

    async def handler(message: Any, meta: MessageMeta) -> None:
        log.record("deliver", message, meta)
        if hold:
            await asyncio.sleep(hold)
        log.record("ack", message, meta)

    world.register_handler(cmd["prefix"], handler)
    await world.start()
    return {"ok": True}


async def read_stream(world: World, cmd: dict[str, Any]) -> dict[str, Any]:
    emit({"kind": "reading"})
    async for chunk in world.read_from_stream(cmd["name"], cmd.get("start_index", 0)):
        emit({"kind": "chunk", "data": base64.b64encode(chunk).decode()})
    return {"ok": True}


async def append_forever(world: World, cmd: dict[str, Any]) -> dict[str, Any]:
    """The crash test's writer: runs with steps and hooks that end, event after event, until killed.

    Each run id is announced before its first event, so the parent can check runs
    whose creation the kill interrupted too.
    """
    from worlds_sdk import ids

    from .builders import hook_request, run_created_request, step_request, terminal_request

    i = 0
    while True:
        run_id = ids.new_id("wrun")
        emit({"kind": "run", "run_id": run_id})
        await world.events.create(run_id, run_created_request(b"crash"))
        await world.events.create(run_id, EventRequest(event_type="run_started"))
        await world.events.create(run_id, hook_request("hook_created", f"hook_{run_id}", token=f"crash-{i % 3}"))
        for kind in ("step_created", "step_started", "step_completed"):
            await world.events.create(run_id, step_request(kind, f"step_{i}"))
        await world.events.create(run_id, terminal_request("completed"))
        i += 1
        emit({"kind": "progress", "runs": i})


async def enqueue(world: World, cmd: dict[str, Any]) -> dict[str, Any]:
    """Enqueue messages and announce each id as soon as ``queue()`` returned (it was accepted)."""
    for key in cmd["keys"]:
        sent = await world.queue(cmd["queue"], {"key": key})
        emit({"kind": "enqueued", "key": key, "message_id": sent.message_id})
    return {"ok": True}


COMMANDS = {
    "enqueue": enqueue,
    "create_event": create_event,
    "consume": consume,
    "read_stream": read_stream,
    "append_forever": append_forever,
}


def import_world(reference: str) -> WorldBackend:
    """The World's code, imported once in the fork server: its children inherit it.

    A plugin may import its driver only where it is used (an optional extra); the
    modules its extra declares are the bulk of that, so they are imported too.
    """
    backend = resolve_world(reference)
    for module in backend.extra.modules if backend.extra is not None else ():
        importlib.import_module(module)
    return backend


async def serve(backend: WorldBackend) -> None:
    """Open the World of the config that comes first on stdin, say ``ready``, then run commands until ``exit``."""
    loop = asyncio.get_running_loop()
    opening = await loop.run_in_executor(None, sys.stdin.readline)
    if not opening:
        return
    world = Deadlines().wrap(backend.factory(json.loads(opening)["config"]))  # a hung call ends as an error result
    emit({"kind": "ready", "pid": os.getpid()})
    tasks: set[asyncio.Task[None]] = set()

    async def run(cmd: dict[str, Any]) -> None:
        try:
            result = await COMMANDS[cmd["op"]](world, cmd)
        except (Exception, WorldHung) as exc:
            result = outcome_to_wire(None, exc)
        emit({"kind": "result", **result})

    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            if cmd["op"] == "exit":
                break
            task = asyncio.create_task(run(cmd))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in tasks:
            task.cancel()
        await world.close()
