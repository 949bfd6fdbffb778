"""PL-1: payloads are opaque bytes and come back byte-exact, everywhere they travel."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from conformance import WorldContext, WorldHarness, spec
from conformance.builders import hook_request, new_run, run_created_request, step_request
from conformance.queueing import QueueProbe
from conformance.reading import all_chunks, all_events
from conformance.strategies import execution_contexts, names, payloads, user_data
from worlds_sdk.models import EventRequest

pytestmark = spec(">=2")


@given(payload=payloads, name=names)
def test_PL1_event_payloads_round_trip__MUST(world: WorldHarness, payload: bytes, name: str) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, input=payload)
        await w.events.create(run.run_id, EventRequest(event_type="run_started"))
        await w.events.create(run.run_id, step_request("step_created", name, step_name=name, input=payload))
        await w.events.create(run.run_id, step_request("step_completed", name, result=payload))
        await w.events.create(run.run_id, hook_request("hook_created", "h1", token=name, metadata=payload))
        await w.events.create(run.run_id, hook_request("hook_received", "h1", payload=payload))
        hook = await w.hooks.get_by_token(name)
        assert hook.metadata == payload
        await w.events.create(run.run_id, EventRequest(event_type="run_completed", event_data={"output": payload}))
        got = await w.runs.get(run.run_id)
        assert (got.input, got.output) == (payload, payload)
        step = await w.steps.get(run.run_id, name)
        assert (step.input, step.output, step.step_name) == (payload, payload, name)
        by_type = {e.event_type: e.event_data for e in await all_events(w, run.run_id)}
        assert by_type["run_created"]["input"] == payload  # type: ignore[index]
        assert by_type["step_completed"]["result"] == payload  # type: ignore[index]
        assert by_type["hook_received"]["payload"] == payload  # type: ignore[index]

    world.run(body)


@spec(">=3")
@given(extra=user_data, context=execution_contexts)
def test_PL1_user_data_with_dollar_keys_round_trips__MUST(
    world: WorldHarness, extra: dict[str, Any], context: dict[str, Any]
) -> None:
    """Keys like "$b" or "$o" in event_data, an execution context or an error object are data, not tags."""
    error = {"message": "m", **extra}
    sent = {
        "run_started": dict(extra),
        "step_created": {"step_name": "s", "input": b"\x00", **extra},
        "step_retrying": {"error": error, **extra},
        "hook_created": {"token": "tok", **extra},
        "run_failed": {"error": error, **extra},
    }

    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        created = run_created_request()
        assert created.event_data is not None
        created = EventRequest(
            event_type="run_created", event_data={**created.event_data, "execution_context": context}
        )
        run = (await w.events.create(None, created)).run
        assert run is not None and run.execution_context == context
        await w.events.create(run.run_id, EventRequest(event_type="run_started", event_data=sent["run_started"]))
        await w.events.create(run.run_id, step_request("step_created", "s1", **sent["step_created"]))
        await w.events.create(run.run_id, step_request("step_retrying", "s1", **sent["step_retrying"]))
        await w.events.create(run.run_id, hook_request("hook_created", "h1", **sent["hook_created"]))
        await w.events.create(run.run_id, EventRequest(event_type="run_failed", event_data=sent["run_failed"]))
        got = await w.runs.get(run.run_id)
        assert got.execution_context == context
        assert got.error is not None and got.error.message == "m"
        step = await w.steps.get(run.run_id, "s1")
        assert step.error is not None and step.error.message == "m"
        events = {e.event_type: e.event_data for e in await all_events(w, run.run_id)}
        assert events["run_created"]["execution_context"] == context  # type: ignore[index]
        assert {t: events[t] for t in sent} == sent

    world.run(body)


@spec(">=3")  # bytes in queue messages came with the CBOR queue transport (spec 3)
@given(payload=payloads, name=names)
def test_PL1_queue_messages_round_trip__MUST(world: WorldHarness, payload: bytes, name: str) -> None:
    message = {"key": "m", "blob": payload, "nested": [payload, {"name": name, "$b": name}], "n": 1.5, "none": None}

    async def body(ctx: WorldContext) -> None:
        with tempfile.TemporaryDirectory() as d:
            probe = QueueProbe(Path(d) / "log")
            probe.attach(ctx.world)
            await ctx.world.start()
            await ctx.world.queue("__wkf_step_x", message)
            await probe.wait_all_acked(["m"])
            assert probe.of("m")[0].message == message

    world.run(body)


@spec(">=3")
@given(chunks=st.lists(payloads, max_size=8))
def test_PL1_stream_chunks_round_trip__MUST(world: WorldHarness, chunks: list[bytes]) -> None:
    async def body(ctx: WorldContext) -> None:
        for c in chunks:
            await ctx.world.write_to_stream("s", "wrun_x", c)
        await ctx.world.close_stream("s", "wrun_x")
        assert [c.data for c in await all_chunks(ctx.world, "s", "wrun_x")] == chunks

    world.run(body)


def test_PL1_one_mebibyte_payload_round_trips__MUST(world: WorldHarness) -> None:
    big = bytes(range(256)) * 4096

    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world, input=big)
        assert (await ctx.world.runs.get(run.run_id)).input == big
        await ctx.world.write_to_stream("big", run.run_id, big)
        await ctx.world.close_stream("big", run.run_id)
        assert b"".join([c async for c in ctx.world.read_from_stream("big")]) == big

    world.run(body)
