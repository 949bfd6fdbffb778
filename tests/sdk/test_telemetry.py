"""``worlds_sdk.instrument``: spans and metrics appear, results and errors pass through, and the suite still passes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conformance.builders import new_run, step_request
from reference_worlds.local.world import LocalWorld
from tests.mutants.suite_runs import SuiteRun, SuiteRunner
from worlds_sdk import BatchStreamer, InspectableWorld, World, instrument
from worlds_sdk.errors import EntityConflictError, WorkflowRunNotFoundError
from worlds_sdk.models import EventRequest, MessageMeta


class Recorded:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer = TracerProvider()
        self.tracer.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter = MeterProvider(metric_readers=[self.reader])

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out[metric.name] = list(metric.data.data_points)
        return out


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[dict[str, Any]]:
    yield {"path": str(tmp_path / "world"), "poll_interval": 0.02}


def test_spans_carry_the_rule_attributes_and_the_typed_error(recorded: Recorded, local: dict[str, Any]) -> None:
    async def body() -> None:
        world = instrument(LocalWorld(local), tracer_provider=recorded.tracer, meter_provider=recorded.meter)
        try:
            run = await new_run(world)
            assert (await world.runs.get(run.run_id)).run_id == run.run_id
            await world.events.create(run.run_id, step_request("step_created", "s1"))
            with pytest.raises(EntityConflictError):
                await world.events.create(run.run_id, step_request("step_created", "s1"))
            with pytest.raises(WorkflowRunNotFoundError):
                await world.runs.get("wrun_missing")
        finally:
            await world.close()

    asyncio.run(body())
    spans = {
        (s.name, s.attributes.get("worlds.event_type"), s.attributes["worlds.outcome"])
        for s in recorded.spans.get_finished_spans()
    }
    assert ("world.events.create", "run_created", "ok") in spans
    assert ("world.events.create", "step_created", "ok") in spans
    assert ("world.events.create", "step_created", "EntityConflictError") in spans
    assert ("world.runs.get", None, "WorkflowRunNotFoundError") in spans
    assert ("world.close", None, "ok") in spans
    failed = [s for s in recorded.spans.get_finished_spans() if s.attributes["worlds.outcome"] != "ok"]
    assert all(s.status.status_code.name == "ERROR" for s in failed)
    metrics = recorded.metrics()
    creates = {
        (p.attributes["worlds.event_type"], p.attributes["worlds.outcome"]): p.count
        for p in metrics["worlds.events.create.duration"]
    }
    assert creates == {("run_created", "ok"): 1, ("step_created", "ok"): 1, ("step_created", "EntityConflictError"): 1}
    errors = {(p.attributes["worlds.method"], p.attributes["error.type"]): p.value for p in metrics["worlds.errors"]}
    assert errors == {("events.create", "EntityConflictError"): 1, ("runs.get", "WorkflowRunNotFoundError"): 1}


def test_deliveries_record_latency_and_attempts(recorded: Recorded, local: dict[str, Any]) -> None:
    async def body() -> None:
        world = instrument(LocalWorld(local), tracer_provider=recorded.tracer, meter_provider=recorded.meter)
        done = asyncio.Event()

        async def handler(message: Any, meta: MessageMeta) -> None:
            if meta.attempt == 1:
                raise RuntimeError("once")
            done.set()

        try:
            world.register_handler("__wkf_step_", handler)
            await world.start()
            await world.queue("__wkf_step_otel", {"n": 1})
            await asyncio.wait_for(done.wait(), 30)
        finally:
            await world.close()

    asyncio.run(body())
    metrics = recorded.metrics()
    (attempts,) = metrics["worlds.queue.delivery.attempts"]
    assert (attempts.count, attempts.min, attempts.max) == (2, 1, 2)
    (latency,) = metrics["worlds.queue.delivery.latency"]
    assert latency.count == 2 and latency.min >= 0
    handled = [s for s in recorded.spans.get_finished_spans() if s.name == "world.queue.handle"]
    assert sorted(s.attributes["worlds.outcome"] for s in handled) == ["RuntimeError", "ok"]


def test_the_wrapper_keeps_the_worlds_surfaces_and_records_nothing_without_an_sdk(local: dict[str, Any]) -> None:
    async def body() -> None:
        world = instrument(LocalWorld(local))  # the global providers: no SDK configured, no-ops
        try:
            assert isinstance(world, World) and isinstance(world, BatchStreamer) and isinstance(world, InspectableWorld)
            result = await world.events.create(
                None,
                EventRequest(
                    event_type="run_created", event_data={"deployment_id": "d", "workflow_name": "w", "input": b"\x00"}
                ),
            )
            assert result.run is not None and (await world.runs.get(result.run.run_id)).input == b"\x00"
        finally:
            await world.close()

    asyncio.run(body())


def test_the_instrumented_local_world_passes_the_whole_suite(tmp_path: Path) -> None:
    """The wrapper changes no behaviour: every rule still passes, spans and metrics recorded all along."""
    runner = SuiteRunner(tmp_path, jobs=1)
    run = SuiteRun("tests.instrumented:local", None)
    runner.start([run])
    try:
        proc, report = runner.result(run)
    finally:
        runner.close()
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["summary"]["fail"] == 0 and report["summary"]["pass"] > 30, report["summary"]


@pytest.mark.soak
def test_the_instrumented_postgres_world_passes_the_whole_suite(tmp_path: Path) -> None:
    runner = SuiteRunner(tmp_path, jobs=1)
    run = SuiteRun("tests.instrumented:postgres", None)
    runner.start([run])
    try:
        proc, report = runner.result(run)
    finally:
        runner.close()
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["summary"]["fail"] == 0 and report["summary"]["pass"] > 30, report["summary"]
