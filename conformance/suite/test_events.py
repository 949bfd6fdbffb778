"""EV-1..EV-11: events.create, the event log and its rules (docs/spec.md §3)."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conformance import WorldContext, WorldHarness, observes, pins, requires, spec
from conformance.builders import (
    bootstrap_request,
    new_run,
    new_step,
    run_created_request,
    step_request,
    terminal_request,
    wait_request,
)
from conformance.processes import ChildProcess, race
from conformance.reading import (
    all_events,
    all_runs,
    all_steps,
    collect,
    entities_imply_events,
    events_imply_entities,
    read_to_end,
)
from conformance.wire import request_to_wire
from worlds_sdk import ids
from worlds_sdk.capabilities import Capability, Observation
from worlds_sdk.errors import (
    EntityConflictError,
    RunExpiredError,
    RunNotSupportedError,
    StepNotFoundError,
    TooEarlyError,
    ValidationError,
    WaitNotFoundError,
    WorkflowRunNotFoundError,
)
from worlds_sdk.models import EventRequest, Page, Pagination, SortOrder
from worlds_sdk.protocols import World

pytestmark = spec(">=2")
STARTED = EventRequest(event_type="run_started")


def _ms(moment: datetime) -> datetime:
    """A time at whole milliseconds: the precision the contract promises to keep."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def _outcomes(*coros: object) -> list[object]:
    return list(await asyncio.gather(*coros, return_exceptions=True))  # type: ignore[call-overload]


# -- EV-1 atomicity ---------------------------------------------------------------


def test_EV1_readers_never_see_half_an_event__MUST(world: WorldHarness) -> None:
    """A reader on the writer's own World object."""
    world.run(lambda ctx: _readers_see_whole_events(ctx, another_client=False))


@observes(Observation.SECOND_CLIENT)
def test_EV1_another_client_never_sees_half_an_event__MUST(world: WorldHarness) -> None:
    """A reader on the writer's World object, and one on a second World object of the same instance."""
    world.run(lambda ctx: _readers_see_whole_events(ctx, another_client=True))


async def _readers_see_whole_events(ctx: WorldContext, *, another_client: bool) -> None:
    w = ctx.world
    run = await new_run(w, started=True)
    done = asyncio.Event()
    problems: list[str] = []

    async def writer() -> None:
        for i in range(30):
            final = "step_failed" if i % 3 == 0 else "step_completed"
            for kind in ("step_created", "step_started", final):
                await w.events.create(run.run_id, step_request(kind, f"s{i}"))
        await w.events.create(run.run_id, terminal_request("completed"))
        done.set()

    async def reader(r: World) -> None:
        while not done.is_set():
            events = await all_events(r, run.run_id)
            steps, now = await all_steps(r, run.run_id), await r.runs.get(run.run_id)
            problems.extend(events_imply_entities(events, steps, now))
            steps, now = await all_steps(r, run.run_id), await r.runs.get(run.run_id)
            problems.extend(entities_imply_events(steps, now, await all_events(r, run.run_id)))
            await asyncio.sleep(0)

    readers = [reader(w)] + ([reader(await ctx.open_another())] if another_client else [])
    await asyncio.gather(writer(), *readers)
    assert not problems, problems[:5]


@spec(">=3")
@requires(Capability.MULTI_PROCESS, Capability.CRASH_SAFE)
def test_EV1_sigkilled_writer_leaves_whole_events__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        rng = random.Random()
        for _ in range(3):
            child = await ctx.spawn("writer")
            await child.send({"op": "append_forever"})
            await child.receive("progress")
            deadline = time.monotonic() + rng.uniform(0.05, 0.4)
            problems: list[str] = []
            while time.monotonic() < deadline:  # read while the writer runs
                for run in await all_runs(ctx.world):
                    events = await all_events(ctx.world, run.run_id)
                    problems += events_imply_entities(events, await all_steps(ctx.world, run.run_id), None)
            child.kill()
            await child.proc.wait()
            announced = await _announced_runs(child)
            world_after = await ctx.restart()
            for run_id in announced:
                events = await all_events(world_after, run_id)
                try:
                    run = await world_after.runs.get(run_id)
                except WorkflowRunNotFoundError:
                    assert events == [], f"{run_id}: events without their run"
                    continue
                assert events and events[0].event_type == "run_created", f"{run_id}: run without run_created"
                steps = await all_steps(world_after, run_id)
                problems += events_imply_entities(events, steps, run)
                problems += entities_imply_events(steps, run, events)
                if run.status == "completed":  # HK-3 in the same atomic unit as the terminal event
                    hooks = await collect(lambda p, r=run_id, w=world_after: w.hooks.list(run_id=r, pagination=p))
                    assert hooks == [], f"{run_id}: hooks outlive run"
            assert not problems, problems[:5]

    world.run(body)


async def _announced_runs(child: ChildProcess) -> list[str]:
    """Every run id the killed writer announced (it was killed, so its stdout ends; a torn last line is dropped)."""
    assert child.proc.stdout is not None
    messages = list(child.skipped)
    for line in (await child.proc.stdout.read()).splitlines():
        try:
            messages.append(json.loads(line))
        except ValueError:
            continue
    return [m["run_id"] for m in messages if m.get("kind") == "run"]


# -- EV-2 results ------------------------------------------------------------------


@spec(">=3")
def test_EV2_create_returns_event_and_entity__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        created = await w.events.create(None, run_created_request(b"\x01in"))
        assert created.event is not None and created.run is not None
        run_id = created.run.run_id
        assert created.event.event_type == "run_created" and created.event.run_id == run_id
        assert created.event.event_id.startswith("evnt_")
        ids.parse_ulid_time(created.event.event_id)
        assert created.run.status == "pending" and created.run.input == b"\x01in"
        assert created.event.created_at.tzinfo is not None
        assert await w.events.get(run_id, created.event.event_id) == created.event
        started = await w.events.create(run_id, STARTED)
        assert started.run is not None and started.run.status == "running" and started.run.started_at
        step = await w.events.create(run_id, step_request("step_created", "s1"))
        assert step.step is not None and (step.step.status, step.step.attempt) == ("pending", 0)
        assert step.event is not None and step.event.correlation_id == "s1"
        hook = await w.events.create(
            run_id, EventRequest(event_type="hook_created", correlation_id="h1", event_data={"token": "tok-ev2"})
        )
        assert hook.hook is not None and hook.hook.token == "tok-ev2" and hook.hook.run_id == run_id
        resume = _ms(datetime.now(UTC) + timedelta(hours=1))
        wait = await w.events.create(run_id, wait_request("wait_created", "w1", resume))
        assert wait.wait is not None and wait.wait.status == "waiting" and wait.wait.resume_at == resume
        assert await w.runs.get(run_id) == started.run

    world.run(body)


# -- EV-3 run ids ------------------------------------------------------------------


def test_EV3_world_mints_run_ids__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world)
        assert run.run_id.startswith("wrun_")
        minted = ids.parse_ulid_time(run.run_id)
        assert abs((minted - datetime.now(UTC)).total_seconds()) < 300

    world.run(body)


@spec(">=3")
def test_EV3_client_run_id_within_window_accepted__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        now = int(time.time() * 1000)
        for run_id in (
            ids.new_id("wrun"),
            "wrun_" + ids.ulid_at(now - (23 * 60 + 59) * 60 * 1000),
            "wrun_" + ids.ulid_at(now + 4 * 60 * 1000),
        ):
            result = await ctx.world.events.create(run_id, run_created_request())
            assert result.run is not None and result.run.run_id == run_id

    world.run(body)


@pytest.mark.parametrize(
    "make_id",
    [
        pytest.param(lambda now: "wrun_" + ids.ulid_at(now - (24 * 60 + 1) * 60 * 1000), id="24h1min-old"),
        pytest.param(lambda now: "wrun_" + ids.ulid_at(now + 330 * 1000), id="5min30s-in-future"),
        pytest.param(lambda now: "wrun_not-a-ulid", id="not-a-ulid"),
        pytest.param(lambda now: "run_" + ids.ulid_at(now), id="wrong-prefix"),
    ],
)
@spec(">=3")
def test_EV3_bad_client_run_id_rejected__MUST(world: WorldHarness, make_id: object) -> None:
    async def body(ctx: WorldContext) -> None:
        run_id = make_id(int(time.time() * 1000))  # type: ignore[operator]
        with pytest.raises(ValidationError) as info:
            await ctx.world.events.create(run_id, run_created_request())
        assert info.value.field == "run_id"
        assert await all_runs(ctx.world) == []

    world.run(body)


@spec(">=3")
def test_EV3_other_events_need_a_run_id__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        with pytest.raises(ValidationError) as info:
            await ctx.world.events.create(None, step_request("step_created", "s1"))
        assert info.value.field == "run_id"

    world.run(body)


# -- EV-4 / EV-5 / EV-6 runs -----------------------------------------------------------


@spec(">=3")
def test_EV4_duplicate_run_created_conflicts__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run_id = ids.new_id("wrun")
        await ctx.world.events.create(run_id, run_created_request())
        with pytest.raises(EntityConflictError):
            await ctx.world.events.create(run_id, run_created_request(b"other"))
        events = await all_events(ctx.world, run_id)
        assert [e.event_type for e in events] == ["run_created"]
        assert (await ctx.world.runs.get(run_id)).input == b"\x00in"

    world.run(body)


@spec(">=3")
def test_EV5_run_started_on_running_run_appends_nothing__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world, started=True)
        again = await ctx.world.events.create(run.run_id, STARTED)
        assert again.event is None and again.run is not None and again.run.status == "running"
        assert again.run.started_at == run.started_at
        events = await all_events(ctx.world, run.run_id)
        assert [e.event_type for e in events] == ["run_created", "run_started"]

    world.run(body)


@spec(">=3")
def test_EV5_concurrent_run_started_appends_once__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world)
        outcomes = await _outcomes(*(ctx.world.events.create(run.run_id, STARTED) for _ in range(8)))
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
        events = await all_events(ctx.world, run.run_id)
        assert [e.event_type for e in events].count("run_started") == 1

    world.run(body)


@spec(">=3")
@requires(Capability.MULTI_PROCESS)
def test_EV5_run_started_from_many_processes_appends_once__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world)
        children = await ctx.spawn_many(6)
        cmd = {"op": "create_event", "run_id": run.run_id, "request": request_to_wire(STARTED)}
        results = await race([(c, cmd) for c in children])
        assert all(r["ok"] for r in results), results
        events = await all_events(ctx.world, run.run_id)
        assert [e.event_type for e in events].count("run_started") == 1

    world.run(body)


@spec(">=3")
@pytest.mark.parametrize("kind", ["completed", "failed", "cancelled"])
def test_EV5_run_started_on_terminal_run_expired__MUST(world: WorldHarness, kind: str) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world, started=True)
        await ctx.world.events.create(run.run_id, terminal_request(kind))
        with pytest.raises(RunExpiredError) as info:
            await ctx.world.events.create(run.run_id, STARTED)
        assert info.value.status == 410

    world.run(body)


@spec(">=3")
def test_EV6_run_started_bootstraps_missing_run__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run_id = ids.new_id("wrun")
        result = await ctx.world.events.create(run_id, bootstrap_request(b"\x00boot"))
        assert result.run is not None and result.run.status == "running"
        assert result.run.input == b"\x00boot"
        events = await all_events(ctx.world, run_id)
        assert [e.event_type for e in events] == ["run_created", "run_started"]

    world.run(body)


@spec(">=3")
def test_EV6_bootstrap_data_on_existing_run_is_ignored__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world, input=b"\x00original")
        started = await ctx.world.events.create(run.run_id, bootstrap_request(b"\x00other"))
        assert started.run is not None and started.run.status == "running" and started.run.input == b"\x00original"
        again = await ctx.world.events.create(run.run_id, bootstrap_request(b"\x00other"))
        assert again.event is None and again.run is not None and again.run.status == "running"
        types = [e.event_type for e in await all_events(ctx.world, run.run_id)]
        assert types == ["run_created", "run_started"]

    world.run(body)


@spec(">=3")
def test_EV6_run_started_without_bootstrap_on_missing_run_not_found__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        with pytest.raises(WorkflowRunNotFoundError):
            await ctx.world.events.create(ids.new_id("wrun"), STARTED)

    world.run(body)


@spec(">=3")
def test_EV6_resilient_start_races_run_created__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        for _ in range(5):
            run_id = ids.new_id("wrun")
            created, *started = await _outcomes(
                ctx.world.events.create(run_id, run_created_request()),
                ctx.world.events.create(run_id, bootstrap_request()),
                ctx.world.events.create(run_id, bootstrap_request()),
            )
            assert not isinstance(created, BaseException) or isinstance(created, EntityConflictError), created
            assert not [o for o in started if isinstance(o, BaseException)], started
            types = [e.event_type for e in await all_events(ctx.world, run_id)]
            assert types == ["run_created", "run_started"], types
            assert (await ctx.world.runs.get(run_id)).status == "running"

    world.run(body)


# -- EV-7 terminal runs ---------------------------------------------------------------


@spec(">=3")
@pytest.mark.parametrize("kind", ["completed", "failed", "cancelled"])
def test_EV7_terminal_run_accepts_no_transition__MUST(world: WorldHarness, kind: str) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        await w.events.create(run.run_id, terminal_request(kind))
        before = len(await all_events(w, run.run_id))
        refused = [
            terminal_request("completed"),
            terminal_request("failed"),
            step_request("step_created", "s9"),
            EventRequest(event_type="hook_created", correlation_id="h9", event_data={"token": "t9"}),
            wait_request("wait_created", "w9", datetime.now(UTC)),
        ]
        if kind != "cancelled":
            refused.append(terminal_request("cancelled"))
        for request in refused:
            with pytest.raises(EntityConflictError):
                await w.events.create(run.run_id, request)
        assert len(await all_events(w, run.run_id)) == before
        assert (await w.runs.get(run.run_id)).status == kind

    world.run(body)


def test_EV7_cancelling_cancelled_run_is_idempotent__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world)
        first = await ctx.world.events.create(run.run_id, terminal_request("cancelled"))
        again = await ctx.world.events.create(run.run_id, terminal_request("cancelled"))
        assert again.event is not None and again.run is not None and again.run.status == "cancelled"
        assert first.run is not None and again.run.completed_at == first.run.completed_at
        types = [e.event_type for e in await all_events(ctx.world, run.run_id)]
        assert types == ["run_created", "run_cancelled", "run_cancelled"]

    world.run(body)


def test_EV7_terminal_run_records_completion__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        ok = await new_run(w, started=True)
        done = await w.events.create(ok.run_id, terminal_request("completed"))
        assert done.run is not None and done.run.output == b"\x00out" and done.run.completed_at
        bad = await new_run(w, started=True)
        failed = await w.events.create(
            bad.run_id,
            EventRequest(
                event_type="run_failed", event_data={"error": {"message": "m", "stack": "st"}, "error_code": "USER"}
            ),
        )
        assert failed.run is not None and failed.run.error is not None
        assert (failed.run.error.message, failed.run.error.stack, failed.run.error.code) == ("m", "st", "USER")
        assert failed.run.output is None and failed.run.completed_at

    world.run(body)


# -- EV-8 steps ---------------------------------------------------------------------


@spec(">=3")
def test_EV8_unknown_step_not_found__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world, started=True)
        for kind in ("step_started", "step_completed", "step_failed", "step_retrying"):
            with pytest.raises(StepNotFoundError):
                await ctx.world.events.create(run.run_id, step_request(kind, "missing"))
        with pytest.raises(StepNotFoundError):
            await ctx.world.steps.get(run.run_id, "missing")

    world.run(body)


def test_EV8_step_lifecycle__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        await new_step(w, run.run_id, "s1")
        first = await w.events.create(run.run_id, step_request("step_started", "s1"))
        assert first.step is not None and (first.step.status, first.step.attempt) == ("running", 1)
        past = _ms(datetime.now(UTC) - timedelta(hours=1))
        retry = await w.events.create(run.run_id, step_request("step_retrying", "s1", retry_after=past))
        assert retry.step is not None and retry.step.status == "pending" and retry.step.retry_after == past
        assert retry.step.error is not None and retry.step.error.message == "retry"
        second = await w.events.create(run.run_id, step_request("step_started", "s1"))
        assert second.step is not None and second.step.attempt == 2 and second.step.retry_after is None
        assert second.step.started_at == first.step.started_at
        done = await w.events.create(run.run_id, step_request("step_completed", "s1", result=b"\x00r"))
        assert done.step is not None and done.step.status == "completed" and done.step.output == b"\x00r"
        await new_step(w, run.run_id, "s2")
        direct = await w.events.create(run.run_id, step_request("step_completed", "s2"))
        assert direct.step is not None and direct.step.status == "completed"

    world.run(body)


@pytest.mark.parametrize("final", ["step_completed", "step_failed"])
def test_EV8_terminal_step_refuses_events__MUST(world: WorldHarness, final: str) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world, started=True)
        await new_step(ctx.world, run.run_id, "s1", started=True)
        await ctx.world.events.create(run.run_id, step_request(final, "s1"))
        for kind in ("step_started", "step_completed", "step_failed", "step_retrying"):
            with pytest.raises(EntityConflictError):
                await ctx.world.events.create(run.run_id, step_request(kind, "s1"))

    world.run(body)


@spec(">=3")
def test_EV8_step_started_before_retry_after_too_early__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world, started=True)
        await new_step(ctx.world, run.run_id, "s1", started=True)
        later = datetime.now(UTC) + timedelta(seconds=600)
        await ctx.world.events.create(run.run_id, step_request("step_retrying", "s1", retry_after=later))
        with pytest.raises(TooEarlyError) as info:
            await ctx.world.events.create(run.run_id, step_request("step_started", "s1"))
        assert info.value.status == 425
        # whole seconds still to wait; the bounds allow a minute of clock skew between test and World
        retry_after = info.value.retry_after
        assert retry_after is not None and retry_after == int(retry_after) and 540 <= retry_after <= 601
        assert (await ctx.world.steps.get(run.run_id, "s1")).status == "pending"

    world.run(body)


def test_EV8_non_running_step_of_terminal_run_expired__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        await new_step(w, run.run_id, "pending")
        await new_step(w, run.run_id, "running", started=True)
        await w.events.create(run.run_id, terminal_request("cancelled"))
        for kind in ("step_started", "step_failed"):
            with pytest.raises(RunExpiredError):
                await w.events.create(run.run_id, step_request(kind, "pending"))
        done = await w.events.create(run.run_id, step_request("step_completed", "running"))
        assert done.step is not None and done.step.status == "completed"

    world.run(body)


@pytest.mark.parametrize("mix", ["completed", "failed", "mixed"])
def test_EV8_concurrent_step_completion_has_one_winner__MUST(world: WorldHarness, mix: str) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        await new_step(w, run.run_id, "s1", started=True)
        kinds = {"completed": ["step_completed"] * 8, "failed": ["step_failed"] * 8}.get(
            mix, ["step_completed", "step_failed"] * 4
        )
        outcomes = await _outcomes(*(w.events.create(run.run_id, step_request(k, "s1")) for k in kinds))
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, EntityConflictError) for o in outcomes if o not in winners), outcomes
        types = [e.event_type for e in await all_events(w, run.run_id)]
        assert types.count("step_completed") + types.count("step_failed") == 1

    world.run(body)


@requires(Capability.MULTI_PROCESS)
def test_EV8_step_completion_from_many_processes_has_one_winner__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world, started=True)
        await new_step(ctx.world, run.run_id, "s1", started=True)
        children = await ctx.spawn_many(6)
        cmd = {
            "op": "create_event",
            "run_id": run.run_id,
            "request": request_to_wire(step_request("step_completed", "s1")),
        }
        results = await race([(c, cmd) for c in children])
        assert sum(r["ok"] for r in results) == 1, results
        assert {r["error"] for r in results if not r["ok"]} <= {"EntityConflictError"}, results

    world.run(body)


def test_EV8_racing_step_started_never_reopens_terminal_step__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        for i in range(5):
            await new_step(w, run.run_id, f"s{i}", started=True)
            requests = [step_request("step_started", f"s{i}")] * 4 + [step_request("step_completed", f"s{i}")]
            random.Random(i).shuffle(requests)
            await _outcomes(*(w.events.create(run.run_id, r) for r in requests))
            assert (await w.steps.get(run.run_id, f"s{i}")).status == "completed"
            types = [e.event_type for e in await all_events(w, run.run_id) if e.correlation_id == f"s{i}"]
            assert "step_started" not in types[types.index("step_completed") :], types

    world.run(body)


def test_EV8_duplicate_step_created_conflicts__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world, started=True)
        outcomes = await _outcomes(
            *(ctx.world.events.create(run.run_id, step_request("step_created", "s1")) for _ in range(6))
        )
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1, outcomes
        assert all(isinstance(o, EntityConflictError) for o in outcomes if isinstance(o, BaseException))
        types = [e.event_type for e in await all_events(ctx.world, run.run_id)]
        assert types.count("step_created") == 1

    world.run(body)


# -- EV-9 waits ---------------------------------------------------------------------


@spec(">=3")
def test_EV9_wait_rules__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        resume = datetime.now(UTC) + timedelta(seconds=1)
        await w.events.create(run.run_id, wait_request("wait_created", "w1", resume))
        with pytest.raises(EntityConflictError):
            await w.events.create(run.run_id, wait_request("wait_created", "w1", resume))
        with pytest.raises(WaitNotFoundError):
            await w.events.create(run.run_id, wait_request("wait_completed", "nope"))
        outcomes = await _outcomes(
            *(w.events.create(run.run_id, wait_request("wait_completed", "w1")) for _ in range(5))
        )
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, EntityConflictError) for o in outcomes if o not in winners), outcomes
        assert winners[0].wait is not None and winners[0].wait.status == "completed"  # type: ignore[union-attr]

    world.run(body)


# -- EV-10 spec versions ---------------------------------------------------------------


def test_EV10_events_on_a_run_from_newer_spec_not_supported__MUST(world: WorldHarness) -> None:
    """Spec 2's guard (``requiresNewerWorld`` on the stored run): a World may refuse the run at its
    creation (spec 3, the test below) or keep it, but never accept an event on it."""

    async def body(ctx: WorldContext) -> None:
        request = run_created_request()
        newer = EventRequest(
            event_type=request.event_type, event_data=request.event_data, spec_version=ctx.world.spec_version + 1
        )
        with pytest.raises(RunNotSupportedError):
            created = await ctx.world.events.create(None, newer)
            assert created.run is not None
            await ctx.world.events.create(created.run.run_id, EventRequest(event_type="run_started"))

    world.run(body)


@spec(">=3")
def test_EV10_run_from_newer_spec_not_supported__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        newer = ctx.world.spec_version + 1
        request = run_created_request()
        request = EventRequest(event_type=request.event_type, event_data=request.event_data, spec_version=newer)
        with pytest.raises(RunNotSupportedError):
            await ctx.world.events.create(None, request)

    world.run(body)


# -- EV-11 ordering and cursors ----------------------------------------------------------


def test_EV11_events_listed_in_append_order__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        appended = []
        for i in range(25):
            result = await w.events.create(run.run_id, step_request("step_created", f"s{i:02}"))
            assert result.event is not None
            appended.append(result.event.event_id)
        listed = [e.event_id for e in await all_events(w, run.run_id)][2:]
        assert listed == appended
        newest_first = await collect(lambda p: w.events.list(run.run_id, pagination=p), sort_order="desc")
        assert [e.event_id for e in newest_first][: len(appended)] == appended[::-1]
        events = await all_events(w, run.run_id)
        decreasing = [(a.event_id, b.event_id) for a, b in itertools.pairwise(events) if b.created_at < a.created_at]
        assert not decreasing, f"created_at decreases along the list: {decreasing[:3]}"

    world.run(body)


def test_EV11_cursor_at_end_yields_new_events__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)

        def fetch(p: Pagination) -> Any:
            return w.events.list(run.run_id, pagination=p)

        events, cursor = await read_to_end(fetch, limit=2)
        assert len(events) == 2 and cursor is not None, "the last page must carry a cursor"
        tail = await w.events.list(run.run_id, pagination=Pagination(limit=10, cursor=cursor))
        assert tail.data == [] and not tail.has_more
        added = await w.events.create(run.run_id, step_request("step_created", "late"))
        later, _ = await read_to_end(fetch, cursor=cursor, limit=10)
        assert [e.event_id for e in later] == [added.event.event_id]  # type: ignore[union-attr]

    world.run(body)


def test_EV11_pages_never_skip_or_repeat_under_appends__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        writing = asyncio.Event()
        writing.set()

        async def writer() -> None:
            for i in range(60):
                await w.events.create(run.run_id, step_request("step_created", f"s{i:02}"))
            writing.clear()

        async def pager() -> list[str]:
            seen: list[str] = []
            cursor = None
            while True:
                page = await w.events.list(run.run_id, pagination=Pagination(limit=4, cursor=cursor))
                seen += [e.event_id for e in page.data]
                cursor = page.cursor or cursor
                if not page.has_more and not writing.is_set():
                    rest, _ = await read_to_end(
                        lambda p: w.events.list(run.run_id, pagination=p), cursor=cursor, limit=1000
                    )
                    return seen + [e.event_id for e in rest]
                await asyncio.sleep(0)

        _, seen = await asyncio.gather(writer(), pager())
        assert seen == [e.event_id for e in await all_events(w, run.run_id)]

    world.run(body)


@spec(">=3")
def test_EV11_list_by_correlation_id__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        run = await new_run(w, started=True)
        await new_step(w, run.run_id, "a", started=True)
        await new_step(w, run.run_id, "b")
        await w.events.create(run.run_id, step_request("step_completed", "a"))
        listed = await collect(lambda p: w.events.list_by_correlation_id("a", run_id=run.run_id, pagination=p))
        assert [e.event_type for e in listed] == ["step_created", "step_started", "step_completed"]
        anywhere = await collect(lambda p: w.events.list_by_correlation_id("a", pagination=p))
        assert anywhere[0].event_type == "step_created"

    world.run(body)


def test_EV11_page_limit_above_maximum_rejected__SHOULD(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        run = await new_run(ctx.world)
        with pytest.raises(ValidationError):
            await ctx.world.events.list(run.run_id, pagination=Pagination(limit=1001))

    world.run(body)


def test_EV11_runs_and_steps_list_newest_first__SHOULD(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        runs = []
        for _ in range(3):
            runs.append(await new_run(w, started=True))
            await asyncio.sleep(0.002)  # distinct creation milliseconds: the order is then unambiguous
        listed = [r.run_id for r in await all_runs(w)]
        assert listed == [r.run_id for r in reversed(runs)]
        for i in range(3):
            await new_step(w, runs[0].run_id, f"s{i}")
            await asyncio.sleep(0.002)
        assert [s.step_id for s in await all_steps(w, runs[0].run_id)] == ["s2", "s1", "s0"]
        filtered = await collect(lambda p: w.runs.list(status="running", workflow_name="wf_conformance", pagination=p))
        assert {r.run_id for r in filtered} == {r.run_id for r in runs}
        assert await collect(lambda p: w.runs.list(status="completed", pagination=p)) == []

    world.run(body)


@spec(">=3")
@pins("runs.list", "pagination.limit", "pagination.cursor", "pagination.sort_order")
@pins("steps.list", "pagination.limit", "pagination.cursor", "pagination.sort_order")
@pins("hooks.list", "pagination.limit", "pagination.cursor", "pagination.sort_order")
@pins("events.list", "pagination.limit", "pagination.cursor", "pagination.sort_order")
@pins("events.list_by_correlation_id", "pagination.limit", "pagination.cursor", "pagination.sort_order")
def test_EV11_every_list_pages_with_cursors__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        runs = [await new_run(w, started=True) for _ in range(5)]
        owner = runs[0].run_id
        for i in range(5):
            await new_step(w, owner, f"s{i}")
            await w.events.create(
                owner,
                EventRequest(event_type="hook_created", correlation_id=f"h{i}", event_data={"token": f"page-{i}"}),
            )
        past = datetime.now(UTC) - timedelta(hours=1)
        for kind in ("step_started", "step_retrying", "step_started", "step_completed"):  # five events for s0
            data = {"retry_after": past} if kind == "step_retrying" else {}
            await w.events.create(owner, step_request(kind, "s0", **data))
        lists: dict[str, Callable[[Pagination], Awaitable[Page[Any]]]] = {
            "runs": lambda p: w.runs.list(pagination=p),
            "steps": lambda p: w.steps.list(owner, pagination=p),
            "hooks": lambda p: w.hooks.list(run_id=owner, pagination=p),
            "events": lambda p: w.events.list(owner, pagination=p),
            "list_by_correlation_id": lambda p: w.events.list_by_correlation_id("s0", run_id=owner, pagination=p),
        }
        for name, fetch in lists.items():
            by_order: dict[str, list[Any]] = {}
            order: SortOrder
            for order in ("asc", "desc"):
                # limit is an upper bound: both reads follow cursors to the end, in pages of any size
                got = await collect(fetch, limit=2, sort_order=order)
                whole = await collect(fetch, limit=1000, sort_order=order)
                assert got == whole, f"{name} {order}: small pages differ from large ones"
                assert len(got) == len({repr(x) for x in got}) >= 5, f"{name} {order}: repeated or missing items"
                by_order[order] = got
            assert by_order["desc"] == by_order["asc"][::-1], f"{name}: sort_order='desc' is not the reverse of 'asc'"

    world.run(body)


# -- EV-12 an event names an entity of its own run ------------------------------------


@spec(">=3")
def test_EV12_step_or_wait_of_another_run_is_not_found__MUST(world: WorldHarness) -> None:
    """Steps and waits are keyed by (run, id): run A's events never reach run B's entities."""

    async def body(ctx: WorldContext) -> None:
        w = ctx.world
        a, b = await new_run(w, started=True), await new_run(w, started=True)
        await new_step(w, b.run_id, "s1", started=True)
        await w.events.create(b.run_id, wait_request("wait_created", "w1", datetime.now(UTC) + timedelta(hours=1)))
        logs = [await all_events(w, a.run_id), await all_events(w, b.run_id)]
        for kind in ("step_started", "step_completed", "step_failed", "step_retrying"):
            with pytest.raises(StepNotFoundError):
                await w.events.create(a.run_id, step_request(kind, "s1"))
        with pytest.raises(WaitNotFoundError):
            await w.events.create(a.run_id, wait_request("wait_completed", "w1"))
        assert [await all_events(w, a.run_id), await all_events(w, b.run_id)] == logs
        step = await w.steps.get(b.run_id, "s1")
        assert (step.status, step.attempt) == ("running", 1)
        own = await w.events.create(a.run_id, step_request("step_created", "s1"))  # the same id in run A is new
        assert own.step is not None and (own.step.run_id, own.step.status) == (a.run_id, "pending")
        done = await w.events.create(b.run_id, wait_request("wait_completed", "w1"))
        assert done.wait is not None and done.wait.status == "completed"

    world.run(body)
