"""QO-1, QO-2 and Q-6's deployment: what ``queue()`` refuses, and which deployment a message is for."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance import WorldContext, WorldHarness, observes, spec
from conformance.builders import WORKFLOW
from conformance.queueing import QueueProbe
from worlds_sdk.capabilities import Observation
from worlds_sdk.errors import ValidationError
from worlds_sdk.models import EventRequest

pytestmark = spec(">=2")
QUEUE = "__wkf_step_conformance/options"

BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"delay_seconds": -1}, "delay_seconds"),
    ({"delay_seconds": -0.001}, "delay_seconds"),
    ({"delay_seconds": float("nan")}, "delay_seconds"),
    ({"delay_seconds": float("inf")}, "delay_seconds"),
    ({"delay_seconds": True}, "delay_seconds"),
    ({"delay_seconds": "5"}, "delay_seconds"),
    ({"idempotency_key": ""}, "idempotency_key"),
    ({"idempotency_key": 5}, "idempotency_key"),
    ({"deployment_id": ""}, "deployment_id"),
    ({"headers": {"x-count": 1}}, "headers"),
]
"""Each is refused with a ``ValidationError`` naming the field; none may be bent into a legal value."""


@pytest.fixture
def log_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="worlds-queue-") as d:
        yield Path(d)


@spec(">=3")
def test_QO1_bad_queue_options_are_refused__MUST(world: WorldHarness) -> None:
    """A negative or non-finite delay and an empty idempotency key are errors, not clamped or taken as given."""

    async def body(ctx: WorldContext) -> None:
        wrong: list[str] = []
        for options, field in BAD_OPTIONS:
            try:
                await ctx.world.queue(QUEUE, {"key": "bad"}, **options)
            except ValidationError as exc:
                if exc.field != field:
                    wrong.append(f"{options}: ValidationError names {exc.field!r}, not {field!r}")
            else:
                wrong.append(f"{options}: accepted")
        assert not wrong, f"queue() must refuse these with ValidationError: {wrong}"
        for fine in ({"delay_seconds": 0}, {"delay_seconds": 0.0}, {"idempotency_key": "k"}, {"headers": {}}):
            await ctx.world.queue(QUEUE, {"key": "fine"}, **fine)

    world.run(body)


@observes(Observation.MESSAGE_DEPLOYMENT_ID)
def test_QO2_a_message_is_for_the_given_deployment_else_the_worlds__MUST(world: WorldHarness, log_dir: Path) -> None:
    async def body(ctx: WorldContext) -> None:
        own = await ctx.world.get_deployment_id()
        probe = QueueProbe(log_dir / "log")
        probe.attach(ctx.world)
        await ctx.world.start()
        await ctx.world.queue(QUEUE, {"key": "given"}, deployment_id=f"{own}-other")
        await ctx.world.queue(QUEUE, {"key": "default"})
        await probe.wait_all_acked(["given", "default"])
        got = {key: probe.of(key)[0].meta.deployment_id for key in ("given", "default")}
        assert got == {"given": f"{own}-other", "default": own}, "MessageMeta.deployment_id"

    world.run(body)


@spec(">=3")
@observes(Observation.MESSAGE_DEPLOYMENT_ID)
def test_Q6_recovery_message_is_for_the_runs_deployment__MUST(world: WorldHarness, log_dir: Path) -> None:
    """The run was started by another deployment than this World's: only that code can replay it."""

    async def body(ctx: WorldContext) -> None:
        started_by = f"{await ctx.world.get_deployment_id()}-previous"
        created = await ctx.world.events.create(
            None,
            EventRequest(
                event_type="run_created",
                event_data={"deployment_id": started_by, "workflow_name": WORKFLOW, "input": b"\x00in"},
            ),
        )
        assert created.run is not None
        probe = QueueProbe(log_dir / "log")
        probe.attach(ctx.world, prefix="__wkf_workflow_")
        await ctx.world.start()
        await probe.wait_until(lambda: bool(probe.deliveries))
        (recovery,) = {(str(d.message), d.meta.deployment_id) for d in probe.deliveries}
        assert recovery == (str({"run_id": created.run.run_id}), started_by), "the recovery message's deployment"

    world.run(body)
