"""RD-1 (resolve_data='none' strips exactly the payload) and ER-1 (read misses are typed)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from conformance import WorldContext, WorldHarness, pins, spec
from conformance.builders import (
    hook_request,
    new_run,
    new_step,
    run_created_request,
    step_request,
    terminal_request,
    wait_request,
)
from conformance.reading import all_chunks, all_events, all_steps, collect, read_stream
from worlds_sdk.errors import (
    EventNotFoundError,
    HookNotFoundError,
    NotFoundError,
    StepNotFoundError,
    WorkflowRunNotFoundError,
)
from worlds_sdk.events import PAYLOAD_FIELDS, strip_entity
from worlds_sdk.models import EventRequest

pytestmark = spec(">=2")


def test_RD1_resolve_none_strips_run_and_step_data__MUST(world: WorldHarness) -> None:
    """RD-1 as spec 2 has it (``WorkflowRunWithoutData``, ``StepWithoutData``: ``input`` and ``output``
    undefined; events without their payload fields): the metadata stays."""

    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True, input=b"\x00in")
        await w.events.create(run.run_id, step_request("step_created", "s1", input=b"\x00step"))
        await w.events.create(run.run_id, step_request("step_completed", "s1", result=b"\x00out"))
        await w.events.create(run.run_id, EventRequest(event_type="run_completed", event_data={"output": b"\x00done"}))
        bare = await w.runs.get(run.run_id, resolve_data="none")
        assert (bare.input, bare.output) == (None, None)
        assert (bare.status, bare.workflow_name, bare.deployment_id) == (
            "completed",
            run.workflow_name,
            run.deployment_id,
        )
        listed = await collect(lambda p: w.runs.list(resolve_data="none", pagination=p))
        assert [(r.run_id, r.input, r.output) for r in listed] == [(run.run_id, None, None)]
        step = await w.steps.get(run.run_id, "s1", resolve_data="none")
        assert (step.input, step.output, step.step_name, step.status) == (None, None, "conformance_step", "completed")
        steps = await collect(lambda p: w.steps.list(run.run_id, resolve_data="none", pagination=p))
        assert [(s.step_id, s.input, s.output) for s in steps] == [("s1", None, None)]
        events = await collect(lambda p: w.events.list(run.run_id, resolve_data="none", pagination=p))
        assert [e.event_type for e in events][-1] == "run_completed"
        for event in events:
            kept = set(event.event_data or {})
            assert not kept & set(PAYLOAD_FIELDS.get(event.event_type, ())), event

    world.run(body)


@spec(">=3")
@pins("runs.get", "resolve_data")
@pins("runs.list", "resolve_data")
@pins("steps.get", "resolve_data")
@pins("steps.list", "resolve_data")
@pins("events.get", "resolve_data")
@pins("events.list", "resolve_data")
@pins("events.list_by_correlation_id", "resolve_data")
def test_RD1_resolve_none_strips_exactly_payload_fields__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        await new_step(w, run.run_id, "s1", started=True)
        await w.events.create(run.run_id, step_request("step_retrying", "s1", stack="trace"))
        await w.events.create(run.run_id, step_request("step_started", "s1"))
        await w.events.create(run.run_id, step_request("step_completed", "s1"))
        await new_step(w, run.run_id, "s2", started=True)
        await w.events.create(run.run_id, step_request("step_failed", "s2", stack="trace"))
        await w.events.create(run.run_id, hook_request("hook_created", "h1", token="t", metadata=b"\x00m"))
        await w.events.create(run.run_id, hook_request("hook_received", "h1", payload=b"\x00p"))
        await w.events.create(run.run_id, wait_request("wait_created", "w1", datetime.now(UTC) + timedelta(1)))
        await w.events.create(run.run_id, terminal_request("completed"))
        full = await collect(lambda p: w.events.list(run.run_id, pagination=p))
        bare = await collect(lambda p: w.events.list(run.run_id, pagination=p, resolve_data="none"))
        assert [e.event_id for e in full] == [e.event_id for e in bare]
        for f, b in zip(full, bare, strict=True):
            stripped = set(PAYLOAD_FIELDS.get(f.event_type, ()))
            expected = {k: v for k, v in (f.event_data or {}).items() if k not in stripped}
            assert dict(b.event_data or {}) == expected, f.event_type
            assert (b.event_type, b.correlation_id, b.created_at, b.spec_version) == (
                f.event_type,
                f.correlation_id,
                f.created_at,
                f.spec_version,
            )
        one = await w.events.get(run.run_id, full[0].event_id, resolve_data="none")
        assert "input" not in (one.event_data or {}) and one.event_data["workflow_name"]  # type: ignore[index]
        r_full, r_bare = await w.runs.get(run.run_id), await w.runs.get(run.run_id, resolve_data="none")
        assert r_bare.input is None and r_bare.output is None and r_full.output == b"\x00out"
        assert (r_bare.status, r_bare.workflow_name, r_bare.started_at) == (
            r_full.status,
            r_full.workflow_name,
            r_full.started_at,
        )
        s_full = await w.steps.get(run.run_id, "s1")
        s_bare = await w.steps.get(run.run_id, "s1", resolve_data="none")
        assert s_bare == dataclasses.replace(s_full, input=None, output=None, error=None)
        assert r_bare == dataclasses.replace(r_full, input=None, output=None, error=None)
        lists = {
            "runs.list": lambda rd, p: w.runs.list(resolve_data=rd, pagination=p),
            "steps.list": lambda rd, p: w.steps.list(run.run_id, resolve_data=rd, pagination=p),
            "list_by_correlation_id": lambda rd, p: w.events.list_by_correlation_id(
                "s1", resolve_data=rd, pagination=p
            ),
        }
        for name, fetch in lists.items():
            full_items = await collect(lambda p, f=fetch: f("all", p))
            bare_items = await collect(lambda p, f=fetch: f("none", p))
            assert full_items and [strip_entity(x, "none") for x in full_items] == bare_items, name
            assert bare_items != full_items, f"{name}: resolve_data='none' stripped nothing"

    world.run(body)


@spec(">=3")
@pins("hooks.get", "resolve_data")
@pins("hooks.get_by_token", "resolve_data")
@pins("hooks.list", "resolve_data")
def test_RD1_resolve_none_strips_hook_metadata__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        await w.events.create(run.run_id, hook_request("hook_created", "h1", token="t", metadata=b"\x00m"))
        assert (await w.hooks.get("h1")).metadata == b"\x00m"
        bare = await w.hooks.get("h1", resolve_data="none")
        assert bare.metadata is None and bare.token == "t" and bare.run_id == run.run_id
        assert (await w.hooks.get_by_token("t", resolve_data="none")).metadata is None
        listed = await collect(lambda p: w.hooks.list(run_id=run.run_id, resolve_data="none", pagination=p))
        assert [(h.hook_id, h.metadata) for h in listed] == [("h1", None)]

    world.run(body)


@spec(">=3")
def test_ER1_read_misses_are_typed_not_found__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        with pytest.raises(WorkflowRunNotFoundError):
            await w.runs.get("wrun_01ARZ3NDEKTSV4RRFFQ69G5FAV")
        run = await new_run(w)
        for call in (
            lambda: w.steps.get(run.run_id, "nope"),
            lambda: w.steps.get(None, "nope"),
            lambda: w.events.get(run.run_id, "evnt_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        ):
            with pytest.raises(NotFoundError):
                await call()
        with pytest.raises(HookNotFoundError):
            await w.hooks.get("nope")
        with pytest.raises(WorkflowRunNotFoundError):
            await w.events.create("wrun_01ARZ3NDEKTSV4RRFFQ69G5FAV", EventRequest(event_type="run_cancelled"))

    world.run(body)


@spec(">=3")
def test_RD1_create_result_is_stripped_too__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        result = await w.events.create(None, run_created_request(b"\x00secret"), resolve_data="none")
        assert result.run is not None and result.run.input is None
        assert result.event is not None and "input" not in (result.event.event_data or {})
        step = await w.events.create(result.run.run_id, step_request("step_created", "s1"), resolve_data="none")
        assert step.step is not None and step.step.input is None and step.step.step_name

    world.run(body)


@spec(">=3")
@pins("hooks.list", "run_id")
@pins("events.list_by_correlation_id", "run_id")
@pins("list_streams_by_run_id", "run_id")
def test_ER1_run_id_filters_return_only_that_run__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        a, b = await new_run(w, started=True), await new_run(w, started=True)
        for run, token in ((a, "ta"), (b, "tb")):
            await w.events.create(run.run_id, hook_request("hook_created", f"h-{token}", token=token))
            await new_step(w, run.run_id, "same-step")
            await w.write_to_stream(f"stream-{token}", run.run_id, b"x")
        assert [h.run_id for h in await collect(lambda p: w.hooks.list(run_id=a.run_id, pagination=p))] == [a.run_id]
        events = await collect(lambda p: w.events.list_by_correlation_id("same-step", run_id=b.run_id, pagination=p))
        assert [e.run_id for e in events] == [b.run_id]
        assert list(await w.list_streams_by_run_id(a.run_id)) == ["stream-ta"]

    world.run(body)


@spec(">=3")
@pins("runs.get", "run_id")
@pins("steps.get", "step_id")
@pins("steps.list", "run_id")
@pins("events.get", "event_id")
@pins("events.list", "run_id")
@pins("events.list_by_correlation_id", "correlation_id")
@pins("hooks.get", "hook_id")
@pins("hooks.get_by_token", "token")
@pins("read_from_stream", "name")
@pins("get_stream_chunks", "name")
@pins("get_stream_info", "name")
def test_ER1_reads_answer_for_the_key_asked__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        runs = {tag: await new_run(w, started=tag == "a", input=tag.encode()) for tag in ("a", "b")}
        for tag, run in runs.items():
            await w.events.create(run.run_id, step_request("step_created", f"s-{tag}", input=tag.encode()))
            await w.events.create(run.run_id, hook_request("hook_created", f"h-{tag}", token=f"t-{tag}"))
            for i in range(2 if tag == "a" else 3):
                await w.write_to_stream(f"stream-{tag}", run.run_id, f"{tag}{i}".encode())
            await w.close_stream(f"stream-{tag}", run.run_id)
        for tag, run in runs.items():
            assert (await w.runs.get(run.run_id)).input == tag.encode()
            step = await w.steps.get(run.run_id, f"s-{tag}")
            assert (step.step_id, step.input) == (f"s-{tag}", tag.encode())
            assert [s.step_id for s in await all_steps(w, run.run_id)] == [f"s-{tag}"]
            events = await all_events(w, run.run_id)
            assert {e.run_id for e in events} == {run.run_id}
            for event in events:
                assert await w.events.get(run.run_id, event.event_id) == event
            by_step = await collect(lambda p, t=tag: w.events.list_by_correlation_id(f"s-{t}", pagination=p))
            assert [(e.event_type, e.run_id) for e in by_step] == [("step_created", run.run_id)]
            hook = await w.hooks.get(f"h-{tag}")
            assert (hook.token, hook.run_id) == (f"t-{tag}", run.run_id)
            assert (await w.hooks.get_by_token(f"t-{tag}")).hook_id == f"h-{tag}"
            chunks = [f"{tag}{i}".encode() for i in range(2 if tag == "a" else 3)]
            assert await read_stream(w, f"stream-{tag}") == chunks
            assert [c.data for c in await all_chunks(w, f"stream-{tag}", run.run_id)] == chunks
            assert (await w.get_stream_info(f"stream-{tag}", run.run_id)).tail_index == len(chunks) - 1

    world.run(body)


@spec(">=3")
@pins("events.get", "run_id")
@pins("steps.get", "run_id")
def test_ER1_gets_are_scoped_to_their_run__MUST(world: WorldHarness) -> None:
    """An id that belongs to another run is a miss: a World must not answer across runs."""

    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        a, b = await new_run(w, started=True), await new_run(w, started=True)
        for run, tag in ((a, b"a"), (b, b"b")):
            await w.events.create(run.run_id, step_request("step_created", "same", input=tag))
        await w.events.create(a.run_id, step_request("step_created", "only-a"))
        assert (await w.steps.get(a.run_id, "same")).input == b"a"
        assert (await w.steps.get(b.run_id, "same")).input == b"b"
        with pytest.raises(StepNotFoundError):
            await w.steps.get(b.run_id, "only-a")
        assert (await w.steps.get(None, "only-a")).run_id == a.run_id
        for event in await all_events(w, a.run_id):
            with pytest.raises(EventNotFoundError):
                await w.events.get(b.run_id, event.event_id)

    world.run(body)


@pins("runs.list", "workflow_name", "status")
def test_ER1_runs_list_filters_by_workflow_name_and_status__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        runs: dict[str, tuple[str, str]] = {}
        for workflow, status in [("wf_x", "pending"), ("wf_x", "running"), ("wf_y", "running"), ("wf_y", "completed")]:
            created = await w.events.create(None, run_created_request(workflow_name=workflow))
            assert created.run is not None
            run_id = created.run.run_id
            if status != "pending":
                await w.events.create(run_id, EventRequest(event_type="run_started"))
            if status == "completed":
                await w.events.create(run_id, terminal_request("completed"))
            runs[run_id] = (workflow, status)
        for workflow in (None, "wf_x", "wf_y", "wf_none"):
            for status in (None, "pending", "running", "completed", "failed"):
                listed = await collect(
                    lambda p, f=workflow, s=status: w.runs.list(workflow_name=f, status=s, pagination=p)  # type: ignore[misc]
                )
                want = {r for r, (f, s) in runs.items() if workflow in (None, f) and status in (None, s)}
                assert {r.run_id for r in listed} == want, (workflow, status)
                assert len(listed) == len(want), (workflow, status)

    world.run(body)
