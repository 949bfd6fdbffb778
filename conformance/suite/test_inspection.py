"""OP-1 to OP-4: the optional inspection surface an operator uses in an incident (capability ``inspection``).

Queue statistics must count what is really there, a dead letter must keep its
message and error and come back whole when requeued, and retention must delete
exactly the terminal runs older than the cutoff, with everything they own, and
never a live run.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from conformance import WorldContext, WorldHarness, requires, spec
from conformance.builders import hook_request, new_run, new_step, terminal_request, wait_request
from worlds_sdk.capabilities import Capability
from worlds_sdk.errors import NotFoundError, ValidationError, WorkflowRunNotFoundError
from worlds_sdk.models import MessageMeta, Pagination
from worlds_sdk.protocols import InspectableWorld

pytestmark = [spec(">=3"), requires(Capability.INSPECTION)]
QUEUE = "__wkf_step_conformance/inspect"
OTHER = "__wkf_workflow_conformance_inspect"
STEPS, WORKFLOWS = "__wkf_step_", "__wkf_workflow_"
"""Handler prefixes: each takes only one of the two queues above."""
POLL = 0.02
DEADLINE = 30.0
COARSE_CLOCK = timedelta(milliseconds=100)
"""How coarse a World's clock may be for OP-4 to tell an old run from a recent one."""


def inspect(ctx: WorldContext) -> InspectableWorld:
    world = ctx.world
    assert isinstance(world, InspectableWorld), "a World declaring 'inspection' must implement InspectableWorld"
    return world


async def stats_of(world: InspectableWorld, queue_name: str) -> Any:
    return next((s for s in await world.queue_stats() if s.queue_name == queue_name), None)


async def until(check: Any, what: str) -> Any:
    """Poll an async check until it returns a truthy value, with a deadline."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(POLL)


def test_OP1_queue_stats_count_ready_delayed_and_leased__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = inspect(ctx)
        assert await stats_of(w, QUEUE) is None, "an empty World reports no queue"
        for n in range(3):
            await ctx.world.queue(QUEUE, {"n": n})
        await ctx.world.queue(QUEUE, {"n": "later"}, delay_seconds=3600)
        await ctx.world.queue(OTHER, {"n": "other"})
        stats = await stats_of(w, QUEUE)
        assert stats is not None, "a queue with messages must be reported"
        assert (stats.ready, stats.leased, stats.delayed, stats.dead_letters) == (3, 0, 1, 0), stats
        assert stats.oldest_ready_seconds is not None and 0 <= stats.oldest_ready_seconds < 3600, stats
        other = await stats_of(w, OTHER)
        assert other is not None and (other.ready, other.delayed) == (1, 0), other
        names = [s.queue_name for s in await w.queue_stats()]
        assert names == sorted(names), "statistics are sorted by queue name"

        held = asyncio.Event()
        release = asyncio.Event()

        async def hold(message: Any, meta: MessageMeta) -> None:
            held.set()
            await release.wait()

        ctx.world.register_handler(WORKFLOWS, hold)
        await ctx.world.start()
        await asyncio.wait_for(held.wait(), DEADLINE)
        other = await stats_of(w, OTHER)
        assert other is not None and (other.ready, other.leased, other.delayed) == (0, 1, 0), (
            f"a held message is leased, not ready: {other}"
        )
        release.set()
        await until(lambda: _gone(w, OTHER), "the acknowledged message to leave the statistics")

    world.run(body)


async def _gone(w: InspectableWorld, queue_name: str) -> bool:
    return await stats_of(w, queue_name) is None


def test_OP2_quarantine_keeps_the_message_and_its_error__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = inspect(ctx)
        sent = await ctx.world.queue(QUEUE, {"poison": b"\x00\xff"})
        await ctx.world.queue(QUEUE, {"fine": True})
        dead = await w.quarantine(sent.message_id, "poison: parser crashed")
        assert (dead.message_id, dead.queue_name, dead.message) == (sent.message_id, QUEUE, {"poison": b"\x00\xff"})
        assert dead.error == "poison: parser crashed"
        listed = await w.list_dead_letters()
        assert [(d.message_id, d.message, d.error) for d in listed] == [
            (sent.message_id, {"poison": b"\x00\xff"}, "poison: parser crashed")
        ]
        stats = await stats_of(w, QUEUE)
        assert stats is not None and (stats.ready, stats.dead_letters) == (1, 1), stats
        assert stats.last_error == "poison: parser crashed", stats
        with pytest.raises(NotFoundError):
            await w.quarantine(sent.message_id, "twice")
        with pytest.raises(ValidationError):
            await w.list_dead_letters(limit=0)

    world.run(body)


def test_OP3_requeue_delivers_the_dead_letter_again__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = inspect(ctx)
        first = await ctx.world.queue(QUEUE, {"n": 1, "blob": b"\x00"})
        second = await ctx.world.queue(QUEUE, {"n": 2})
        await w.quarantine(first.message_id, "parked")
        await w.quarantine(second.message_id, "parked")
        assert await w.requeue([first.message_id]) == 1
        stats = await stats_of(w, QUEUE)
        assert stats is not None and (stats.ready, stats.dead_letters) == (1, 1), f"requeue of one: {stats}"
        assert [d.message_id for d in await w.list_dead_letters()] == [second.message_id]
        assert await w.requeue([first.message_id]) == 0, "a message that is no dead letter is skipped"
        assert await w.requeue() == 1
        stats = await stats_of(w, QUEUE)
        assert stats is not None and (stats.ready, stats.dead_letters) == (2, 0), f"requeue of all: {stats}"

        seen: dict[str, Any] = {}

        async def record(message: Any, meta: MessageMeta) -> None:
            seen[meta.message_id] = message

        ctx.world.register_handler(STEPS, record)
        await ctx.world.start()
        await until(lambda: _count(seen, 2), "both requeued messages to be delivered")
        assert seen == {first.message_id: {"n": 1, "blob": b"\x00"}, second.message_id: {"n": 2}}

    world.run(body)


async def _count(seen: dict[str, Any], n: int) -> bool:
    return len(seen) >= n


async def _finished_run(ctx: WorldContext, kind: str) -> str:
    """A run that owns a step, a hook, a wait and a stream, then ended as ``kind``."""
    run = await new_run(ctx.world, started=True)
    await _give_children(ctx, run.run_id)
    await ctx.world.events.create(run.run_id, terminal_request(kind))
    return run.run_id


async def _give_children(ctx: WorldContext, run_id: str) -> None:
    await new_step(ctx.world, run_id, "step_1", started=True)
    await ctx.world.events.create(run_id, hook_request("hook_created", f"hook_{run_id}", token=f"tok_{run_id}"))
    await ctx.world.events.create(
        run_id, wait_request("wait_created", "wait_1", datetime.now(UTC) + timedelta(hours=1))
    )
    await ctx.world.write_to_stream(f"stream_{run_id}", run_id, b"\x00chunk")


async def _owned(ctx: WorldContext, run_id: str) -> dict[str, int]:
    world = ctx.world
    many = Pagination(limit=1000)
    return {
        "events": len((await world.events.list(run_id, pagination=many)).data),
        "steps": len((await world.steps.list(run_id, pagination=many)).data),
        "hooks": len((await world.hooks.list(run_id=run_id, pagination=many)).data),
        "streams": len(await world.list_streams_by_run_id(run_id)),
    }


def test_OP4_retention_deletes_old_terminal_runs_and_never_a_live_one__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        w = inspect(ctx)
        old = [await _finished_run(ctx, kind) for kind in ("completed", "failed", "cancelled")]
        ends = [cast(datetime, (await ctx.world.runs.get(r)).completed_at) for r in old]
        cutoff = max(ends) + timedelta(milliseconds=5)
        running = await new_run(ctx.world, started=True)
        await _give_children(ctx, running.run_id)
        pending = await new_run(ctx.world)
        # The clock passes the cutoff by more than a coarse World clock's tick (events stamped
        # in one tick may share a time, docs/spec.md decision 29), so the next run ends after it.
        while datetime.now(UTC) <= cutoff + COARSE_CLOCK:
            await asyncio.sleep(0.005)
        recent = await _finished_run(ctx, "completed")
        kept = [running.run_id, pending.run_id, recent]
        before = {r: await _owned(ctx, r) for r in kept}

        expired = await w.count_expired_runs(cutoff)
        assert expired == 3, f"{expired} runs expired, not the 3 old terminal ones"
        deleted = []
        while batch := await w.delete_expired_runs(cutoff, batch_size=2):
            assert batch <= 2, f"a batch deleted {batch} runs, more than batch_size=2"
            deleted.append(batch)
        assert sum(deleted) == 3, deleted
        assert await w.count_expired_runs(cutoff) == 0

        for run_id in old:
            with pytest.raises(WorkflowRunNotFoundError):
                await ctx.world.runs.get(run_id)
            assert await _owned(ctx, run_id) == {"events": 0, "steps": 0, "hooks": 0, "streams": 0}, run_id
        for run_id in kept:
            run = await ctx.world.runs.get(run_id)
            assert run.run_id == run_id, "retention deleted a run it must keep"
            assert await _owned(ctx, run_id) == before[run_id], f"retention touched what {run_id} owns"
        with pytest.raises(ValidationError):
            await w.delete_expired_runs(datetime.now(), batch_size=2)  # naive: no instant
        with pytest.raises(ValidationError):
            await w.delete_expired_runs(cutoff, batch_size=0)

    world.run(body)
