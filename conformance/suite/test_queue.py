"""Q-1..Q-6: at-least-once delivery, attempts, idempotency, delays, leases, recovery."""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import WorldContext, WorldHarness, requires, spec
from conformance.builders import new_run, terminal_request
from conformance.history import DeliveryLog, judge, stream_problems
from conformance.queueing import QueueProbe, wait_for_log
from worlds_sdk.capabilities import Capability
from worlds_sdk.errors import ValidationError
from worlds_sdk.models import MessageMeta

pytestmark = spec(">=2")
QUEUE = "__wkf_step_conformance/step.v1"
SETTLE = 2.0
"""How long a negative check ("no second delivery stream") watches before it concludes."""


def _once(ctx: WorldContext) -> bool:
    """Only a World declaring effectively-once delivery may be held to one delivery per message."""
    return ctx.has(Capability.EFFECTIVELY_ONCE_DELIVERY)


@pytest.fixture
def log_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="worlds-queue-") as d:
        yield Path(d)


def test_Q1_redelivered_after_handler_raises__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        probe = QueueProbe(log_dir / "log", plans={"m1": ["raise", "ack"]})
        probe.attach(ctx.world)
        await ctx.world.start()
        sent = await ctx.world.queue(QUEUE, {"key": "m1"})
        await probe.wait_all_acked(["m1"])
        got = probe.of("m1")
        # a delivery after the ack is a legal duplicate, unless the World is effectively-once
        assert [d.meta.attempt for d in got][: None if _once(ctx) else 2] == [1, 2]
        assert {d.meta.message_id for d in got} == {sent.message_id}
        assert got[0].meta.queue_name == QUEUE

    world.run(body)


def test_Q1_history_has_no_loss_and_no_unexpected_delivery__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        rng = random.Random(42)
        keys = [f"m{i}" for i in range(30)]
        plans = {
            k: rng.choice([["ack"], ["raise", "ack"], ["reschedule:0.2", "ack"], ["raise", "raise"]]) for k in keys
        }
        probe = QueueProbe(log_dir / "log", plans=plans)
        probe.attach(ctx.world)
        await ctx.world.start()
        sent = await asyncio.gather(*(ctx.world.queue(QUEUE, {"key": k}) for k in keys))
        enqueued = {k: s.message_id for k, s in zip(keys, sent, strict=True)}
        assert len(set(enqueued.values())) == len(keys), "message ids must be unique"
        await probe.wait_all_acked(keys, timeout=60)
        verdict = judge(enqueued, probe.log.entries())
        problems = verdict.problems(effectively_once=ctx.has(Capability.EFFECTIVELY_ONCE_DELIVERY))
        assert not problems, problems

    world.run(body)


@requires(Capability.DURABLE_QUEUE)
def test_Q1_pending_messages_survive_restart__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        keys = [f"m{i}" for i in range(5)]
        sent = {k: (await ctx.world.queue(QUEUE, {"key": k})).message_id for k in keys}
        reopened = await ctx.restart()
        probe = QueueProbe(log_dir / "log")
        probe.attach(reopened)
        await reopened.start()
        await probe.wait_all_acked(keys)
        assert not judge(sent, probe.log.entries()).problems(effectively_once=False)

    world.run(body)


@requires(Capability.DURABLE_QUEUE, Capability.MULTI_PROCESS)
def test_Q1_accepted_messages_survive_the_producer_being_killed__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        child = await ctx.spawn("producer")
        await child.send({"op": "enqueue", "queue": QUEUE, "keys": [f"m{i}" for i in range(1000)]})
        for _ in range(20):
            await child.receive("enqueued")
        child.kill()  # SIGKILL mid-stream: whatever queue() had accepted must be delivered
        await child.proc.wait()
        assert child.proc.stdout is not None
        accepted = [m for m in child.skipped if m.get("kind") == "enqueued"]
        for line in (await child.proc.stdout.read()).splitlines():
            try:
                accepted.append(json.loads(line))
            except ValueError:
                continue  # the line the kill tore
        enqueued = {m["key"]: m["message_id"] for m in accepted if m.get("kind") == "enqueued"}
        probe = QueueProbe(log_dir / "log")
        probe.attach(ctx.world)
        await ctx.world.start()
        await probe.wait_all_acked(list(enqueued), timeout=60)
        verdict = judge(enqueued, [e for e in probe.log.entries() if e["key"] in enqueued])
        assert not verdict.problems(effectively_once=False), verdict

    world.run(body)


@requires(Capability.MULTI_PROCESS)
def test_Q5_slow_handler_keeps_its_lease__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        log = DeliveryLog(log_dir / "shared-log")
        children = await ctx.spawn_many(2)
        for c in children:  # each holds its message for longer than a test sandbox's lease
            await c.call({"op": "consume", "prefix": "__wkf_step_", "log": str(log.path), "hold": 6})
        sent = await ctx.world.queue(QUEUE, {"key": "slow"})
        await wait_for_log(log, lambda: any(e["ev"] == "ack" for e in log.entries()), "the slow handler to finish", 60)
        await asyncio.sleep(SETTLE)
        problems = stream_problems(log.entries(), "slow", sent.message_id, effectively_once=_once(ctx))
        assert not problems, f"{problems}: {log.entries()}"

    world.run(body)


def test_Q2_attempts_count_up_and_message_id_is_stable__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        probe = QueueProbe(log_dir / "log", plans={"m1": ["raise", "raise", "ack"]})
        probe.attach(ctx.world)
        await ctx.world.start()
        sent = await ctx.world.queue(QUEUE, {"key": "m1"})
        await probe.wait_all_acked(["m1"])
        got = probe.of("m1")
        assert [d.meta.attempt for d in got][: None if _once(ctx) else 3] == [1, 2, 3]
        assert {d.meta.message_id for d in got} == {sent.message_id}

    world.run(body)


@spec(">=3")
def test_Q2_headers_reach_every_delivery__MUST(world: WorldHarness, log_dir: Path) -> None:
    """A producer's headers, on the first delivery and on redeliveries (spec 2's Worlds dropped them)."""

    async def body(ctx: WorldContext) -> None:
        probe = QueueProbe(log_dir / "log", plans={"m1": ["raise", "ack"]})
        probe.attach(ctx.world)
        await ctx.world.start()
        await ctx.world.queue(QUEUE, {"key": "m1"}, headers={"x-trace": "abc"})
        await probe.wait_all_acked(["m1"])
        got = probe.of("m1")
        assert len(got) >= 2 and all(dict(d.meta.headers) == {"x-trace": "abc"} for d in got), got

    world.run(body)


def test_Q3_idempotency_key_yields_one_message__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        first = await ctx.world.queue(QUEUE, {"key": "m1"}, idempotency_key="idem-1")
        second = await ctx.world.queue(QUEUE, {"key": "m1"}, idempotency_key="idem-1")
        other = await ctx.world.queue(QUEUE, {"key": "m2"}, idempotency_key="idem-2")
        assert first.message_id == second.message_id != other.message_id
        probe = QueueProbe(log_dir / "log")
        probe.attach(ctx.world)
        await ctx.world.start()
        await probe.wait_all_acked(["m1", "m2"])
        await asyncio.sleep(SETTLE)  # a negative check: watch for a second delivery stream
        problems = stream_problems(probe.log.entries(), "m1", first.message_id, effectively_once=_once(ctx))
        assert not problems, (problems, probe.summary())

    world.run(body)


def test_Q3_concurrent_enqueues_with_one_key_yield_one_message__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        sent = await asyncio.gather(*(ctx.world.queue(QUEUE, {"key": "m1"}, idempotency_key="k") for _ in range(10)))
        assert len({s.message_id for s in sent}) == 1, sent
        probe = QueueProbe(log_dir / "log")
        probe.attach(ctx.world)
        await ctx.world.start()
        await probe.wait_all_acked(["m1"])
        await asyncio.sleep(SETTLE)  # a negative check: watch for a second delivery stream
        problems = stream_problems(probe.log.entries(), "m1", sent[0].message_id, effectively_once=_once(ctx))
        assert not problems, (problems, probe.summary())

    world.run(body)


@requires(Capability.MULTI_PROCESS)
def test_Q3_key_held_while_first_message_is_in_flight__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        log = DeliveryLog(log_dir / "child-log")
        child = await ctx.spawn("consumer")
        await child.call({"op": "consume", "prefix": "__wkf_step_", "log": str(log.path), "hold": 1.5})
        first = await ctx.world.queue(QUEUE, {"key": "m1"}, idempotency_key="k")
        await wait_for_log(log, lambda: bool(log.entries()), "the consumer to receive the message")
        again = await ctx.world.queue(QUEUE, {"key": "m1"}, idempotency_key="k")
        assert again.message_id == first.message_id, "a key is held until its message is acknowledged"
        await wait_for_log(log, lambda: any(e["ev"] == "ack" for e in log.entries()), "the ack")
        await asyncio.sleep(SETTLE)
        problems = stream_problems(log.entries(), "m1", first.message_id, effectively_once=_once(ctx))
        assert not problems, (problems, log.entries())

    world.run(body)


@spec(">=3")
@requires(Capability.DELAYED_DELIVERY)
def test_Q4_delay_seconds_honoured__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        probe = QueueProbe(log_dir / "log")
        probe.attach(ctx.world)
        await ctx.world.start()
        before = time.monotonic()
        await ctx.world.queue(QUEUE, {"key": "late"}, delay_seconds=1.5)
        await ctx.world.queue(QUEUE, {"key": "now"})
        await probe.wait_all_acked(["late", "now"])
        assert probe.of("late")[0].at - before >= 1.5 - 0.01, "delivered before delay_seconds"

    world.run(body)


def test_Q4_reschedule_redelivers_same_message_after_timeout__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        probe = QueueProbe(log_dir / "log", plans={"m1": ["reschedule:1.2", "ack"]})
        probe.attach(ctx.world)
        await ctx.world.start()
        sent = await ctx.world.queue(QUEUE, {"key": "m1"})
        await probe.wait_all_acked(["m1"])
        first, second = probe.of("m1")[:2]
        assert first.finished_at is not None and second.at - first.finished_at >= 1.2 - 0.01
        assert first.meta.message_id == second.meta.message_id == sent.message_id
        assert second.meta.attempt > first.meta.attempt

    world.run(body)


@requires(Capability.MULTI_PROCESS, Capability.DURABLE_QUEUE)
def test_Q5_message_of_killed_consumer_redelivered__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        log = DeliveryLog(log_dir / "child-log")
        child = await ctx.spawn("consumer")
        await child.call({"op": "consume", "prefix": "__wkf_step_", "log": str(log.path), "hold": 60})
        sent = await ctx.world.queue(QUEUE, {"key": "m1"})
        await wait_for_log(log, lambda: bool(log.entries()), "the child consumer to receive the message")
        probe = QueueProbe(log_dir / "log")
        probe.attach(ctx.world)
        await ctx.world.start()  # the survivor runs before the holder dies: the lease must expire, not a restart
        child.kill()  # SIGKILL mid-handler
        await child.proc.wait()
        await probe.wait_all_acked(["m1"], timeout=20)
        redelivery = probe.of("m1")[0]
        assert redelivery.meta.message_id == sent.message_id
        assert redelivery.meta.attempt >= 2

    world.run(body)


@requires(Capability.MULTI_PROCESS)
def test_Q5_one_consumer_holds_a_message_at_a_time__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        log = DeliveryLog(log_dir / "shared-log")
        children = await ctx.spawn_many(2)
        for c in children:
            await c.call({"op": "consume", "prefix": "__wkf_step_", "log": str(log.path), "hold": 0.3})
        keys = [f"m{i}" for i in range(8)]
        sent = {k: (await ctx.world.queue(QUEUE, {"key": k})).message_id for k in keys}
        await wait_for_log(
            log, lambda: {e["key"] for e in log.entries() if e["ev"] == "ack"} == set(keys), "every message", 60
        )
        entries = log.entries()
        assert not judge(sent, entries).problems(effectively_once=_once(ctx))
        for key, message_id in sent.items():
            problems = stream_problems(entries, key, message_id, effectively_once=_once(ctx))
            assert not problems, (key, problems)

    world.run(body)


@spec(">=3")
def test_Q6_start_reenqueues_pending_and_running_runs__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        pending = await new_run(ctx.world)
        running = await new_run(ctx.world, started=True)
        ended = []
        for kind in ("completed", "failed", "cancelled"):
            run = await new_run(ctx.world, started=True)
            await ctx.world.events.create(run.run_id, terminal_request(kind))
            ended.append(run.run_id)
        seen: list[tuple[str, object]] = []

        async def handler(message: object, meta: MessageMeta) -> None:
            seen.append((meta.queue_name, message))

        ctx.world.register_handler("__wkf_workflow_", handler)
        await ctx.world.start()
        deadline = time.monotonic() + 30
        wanted = {pending.run_id, running.run_id}
        while not wanted <= {m.get("run_id") for _, m in seen if isinstance(m, dict)}:
            assert time.monotonic() < deadline, f"runs not re-enqueued; saw {seen}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(SETTLE)  # a negative check: ended runs must not be re-enqueued
        assert not set(ended) & {m.get("run_id") for _, m in seen if isinstance(m, dict)}
        assert {q for q, _ in seen} == {"__wkf_workflow_wf_conformance"}

    world.run(body)


@spec(">=3")
def test_QN1_invalid_queue_name_rejected__MUST(world: WorldHarness) -> None:
    async def body(ctx: WorldContext) -> None:
        for bad in ("orders", "__wkf_task_x", "__wkf_step_", "__UP_wkf_step_x"):
            with pytest.raises(ValidationError):
                await ctx.world.queue(bad, {"key": "x"})

    world.run(body)
