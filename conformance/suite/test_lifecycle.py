"""LC-1: a closed World answers every call the same way, whichever World it is."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from conformance import WorldContext, WorldHarness, spec
from conformance.builders import new_run
from worlds_sdk.errors import WorldUnavailableError
from worlds_sdk.models import EventRequest, MessageMeta
from worlds_sdk.protocols import BatchStreamer, World

pytestmark = spec(">=3")
QUEUE = "__wkf_step_conformance/closed"


async def _handler(message: Any, meta: MessageMeta) -> None:
    return None


async def _first_chunk(world: World, name: str) -> None:
    async for _ in world.read_from_stream(name):
        return


def _calls(w: World, run_id: str) -> dict[str, Callable[[], object]]:
    """Every method but ``close()`` and ``get_deployment_id()`` (configuration, not I/O), on data that exists."""
    calls: dict[str, Callable[[], object]] = {
        "start": w.start,
        "runs.get": lambda: w.runs.get(run_id),
        "runs.list": lambda: w.runs.list(),
        "steps.get": lambda: w.steps.get(run_id, "step"),
        "steps.list": lambda: w.steps.list(run_id),
        "events.create": lambda: w.events.create(run_id, EventRequest(event_type="run_started")),
        "events.get": lambda: w.events.get(run_id, "evnt_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        "events.list": lambda: w.events.list(run_id),
        "events.list_by_correlation_id": lambda: w.events.list_by_correlation_id("step"),
        "hooks.get": lambda: w.hooks.get("hook"),
        "hooks.get_by_token": lambda: w.hooks.get_by_token("token"),
        "hooks.list": lambda: w.hooks.list(),
        "queue": lambda: w.queue(QUEUE, {"key": "late"}),
        "register_handler": lambda: w.register_handler("__wkf_step_", _handler),
        "write_to_stream": lambda: w.write_to_stream("s", run_id, b"late"),
        "close_stream": lambda: w.close_stream("s", run_id),
        "read_from_stream": lambda: _first_chunk(w, "s"),
        "list_streams_by_run_id": lambda: w.list_streams_by_run_id(run_id),
        "get_stream_chunks": lambda: w.get_stream_chunks("s", run_id),
        "get_stream_info": lambda: w.get_stream_info("s", run_id),
    }
    if isinstance(w, BatchStreamer):
        calls["write_to_stream_many"] = lambda: w.write_to_stream_many("s", run_id, [b"late"])
    return calls


def test_LC1_a_closed_world_is_unavailable__MUST(world: WorldHarness) -> None:
    """After ``close()`` every call raises ``WorldUnavailableError`` (503), never another error or a result.

    One answer for every World lets a runtime treat a call racing a shutdown the
    same everywhere: the handler fails, its message is redelivered later.
    """

    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w)
        await w.write_to_stream("s", run.run_id, b"early")
        await w.close()
        wrong: dict[str, str] = {}
        for name, call in _calls(w, run.run_id).items():
            try:
                result = call()
                if inspect.isawaitable(result):
                    await result
            except WorldUnavailableError:
                continue
            except Exception as exc:
                wrong[name] = f"{type(exc).__name__}: {exc}"
            else:
                wrong[name] = "answered"
        assert not wrong, f"calls on a closed World must raise WorldUnavailableError: {wrong}"
        await w.close()  # closing again does nothing

    world.run(body)
