"""The reference Worlds wrapped by ``worlds_sdk.instrument``, as backends the conformance suite can run.

A suite run against these proves the wrapper changes no behaviour. The spans and
metrics are really recorded -- to an SDK tracer and meter with in-memory readers,
one pair per process -- so the recording path is what the suite runs through.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from reference_worlds.local.plugin import worlds_register as local_backends
from reference_worlds.local.world import LocalWorld
from worlds_sdk import WorldBackend
from worlds_sdk.telemetry import instrument

SPANS = InMemorySpanExporter()
TRACER = TracerProvider()
TRACER.add_span_processor(SimpleSpanProcessor(SPANS))
METRICS = InMemoryMetricReader()
METER = MeterProvider(metric_readers=[METRICS])


def _instrumented_local(config: Any) -> Any:
    return instrument(LocalWorld(config), tracer_provider=TRACER, meter_provider=METER)


def _instrumented_postgres(config: Any) -> Any:
    from reference_worlds.postgres.world import PostgresWorld

    return instrument(PostgresWorld(config), tracer_provider=TRACER, meter_provider=METER)


def _postgres() -> WorldBackend:
    from reference_worlds.postgres.plugin import worlds_register as postgres_backends

    (backend,) = postgres_backends()
    return dataclasses.replace(backend, id="instrumented-postgres", factory=_instrumented_postgres)


(_local,) = local_backends()
local = dataclasses.replace(_local, id="instrumented-local", factory=_instrumented_local)
postgres = _postgres()
