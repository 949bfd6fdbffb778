"""Benchmarks any World through its backend: ``worlds bench WORLD``.

One harness for every World, so figures are comparable across backends and a
World author measures theirs the same way we measure ours. Each repetition runs
on a fresh sandbox instance; the report gives the median of the repetitions.

Measured, in the shape the runtime produces (not a synthetic append loop):

- the run lifecycle: ``run_created`` (run id minted by the World) →
  ``run_started`` → ``step_created`` (64-byte input) → ``step_started`` →
  ``step_completed`` → ``run_completed``, with 1 and 8 runs in flight
  (``writers``), and, for a World declaring ``multi_process``, 4 processes with
  2 runs in flight each; figures are events per second;
- queue messages per second, from the first enqueue until the last message is
  handled (the World's own consumer, a handler that only records);
- enqueue→handler latency p50/p99 over messages sent one at a time (no backlog);
- in the same run and the same sandbox, the floors of the World's storage
  (:mod:`worlds_sdk.bench_floors`), and every rate's ratio to its floor: ratios
  taken in one run hold on a noisy machine where absolute figures do not;
- for a World on PostgreSQL, PgQueuer on the same server through the same queue
  workload (:mod:`worlds_sdk.bench_pgqueuer`), and the World's queue figures
  over PgQueuer's;
- for a World reached through a bridge (one with an async ``ping()``, such as
  the Node bridge's ``NodeWorld``), the median no-op round trip: the part of
  every figure that is the bridge, not the World, printed beside them so that
  a comparison with in-process Worlds stays honest.

Several Worlds in one command are measured one after the other in one run and
printed as one table (:func:`table`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, runtime_checkable

from . import bench_floors, bench_pgqueuer
from .backend import WorldBackend, WorldConfig
from .bench_floors import Floors, percentile
from .bench_pgqueuer import PeerQueue
from .bench_queue import queue_rate_and_latency
from .capabilities import Capability
from .columns import aligned
from .models import EventRequest
from .protocols import World

EVENTS_PER_RUN = 6
PROCESSES = 4
IN_FLIGHT_PER_PROCESS = 2
FLOOR_COMMITS = 1000
"""At most this many commits per floor: enough for a stable median, short on a slow disk."""


@dataclass(frozen=True)
class BenchResult:
    world: str
    repeats: int
    events_per_second: dict[int, float]
    """Lifecycle events per second by runs in flight."""
    messages_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    round_trip_p50_ms: float | None = None
    """Median no-op round trip through the World's bridge; ``None`` for an in-process World."""
    processes_events_per_second: float | None = None
    """Lifecycle events per second from 4 processes (2 runs in flight each); ``None`` unless ``multi_process``."""
    floors: Floors | None = None
    peer: PeerQueue | None = None
    """PgQueuer on the same server, same queue workload (a World on PostgreSQL only); ``missing`` if not installed."""
    ratios: dict[str, float] = field(default_factory=dict)
    """Each rate over its floor (``events x1``, ``events x8``, ``events 4 procs``, ``queue``), ``scaling``, and
    the queue against the peer (``queue vs peer``, ``p50 vs peer``, ``p99 vs peer``: times better, above 1 we win).
    """

    def lines(self) -> list[str]:
        out = [f"world {self.world}: median of {self.repeats} runs"]
        for writers, rate in self.events_per_second.items():
            out.append(
                f"  lifecycle events/s, {writers} run(s) in flight: {rate:,.0f}{self._ratio(f'events x{writers}')}"
            )
        if self.processes_events_per_second is not None:
            rate = self.processes_events_per_second
            out.append(f"  lifecycle events/s, {PROCESSES} processes: {rate:,.0f}{self._ratio('events procs')}")
        if "scaling" in self.ratios:
            out.append(f"  scaling, most in flight / 1 in flight: {self.ratios['scaling']:.2f}x")
        out.append(f"  queue messages/s (enqueue to handled): {self.messages_per_second:,.0f}{self._ratio('queue')}")
        out.append(f"  enqueue->handler latency: p50 {self.latency_p50_ms:.2f} ms, p99 {self.latency_p99_ms:.2f} ms")
        if self.floors is not None:
            out.append(f"  floors ({self.floors.storage}, same run): {_floors_cell(self.floors)}")
        if self.peer is not None:
            out.append(f"  peer {self.peer.name} (same server, same queue workload): {self._peer_line(self.peer)}")
        if self.round_trip_p50_ms is not None:
            out.append(f"  bridge overhead, no-op round trip: p50 {self.round_trip_p50_ms:.3f} ms")
        return out

    def _peer_line(self, peer: PeerQueue) -> str:
        if peer.missing is not None:
            return peer.missing
        assert peer.messages_per_second is not None and peer.latency_p50_ms is not None
        floor = f" ({peer.messages_per_second / self.floors.claim_ack:.2f}x floor)" if self.floors else ""
        return (
            f"{peer.messages_per_second:,.0f} msg/s{floor}, p50 {peer.latency_p50_ms:.2f} ms,"
            f" p99 {peer.latency_p99_ms:.2f} ms; ours vs it (above 1: ours is better): {self.versus_peer()}"
        )

    def versus_peer(self) -> str:
        """Burst rate, p50 and p99 against the peer's, as times better: ``-`` when it was not measured."""
        keys = ("queue vs peer", "p50 vs peer", "p99 vs peer")
        if not all(key in self.ratios for key in keys):
            return "-"
        return "/".join(f"{self.ratios[key]:.2f}x" for key in keys)

    def _ratio(self, key: str) -> str:
        return f" ({self.ratios[key]:.2f}x floor)" if key in self.ratios else ""

    def cell(self, key: str, rate: float | None) -> str:
        if rate is None:
            return "-"
        return f"{rate:,.0f}" + (f" ({self.ratios[key]:.2f}x)" if key in self.ratios else "")


def _floors_cell(floors: Floors) -> str:
    eight = f"{floors.commit_8:,.0f}" if floors.commit_8 is not None else "-"
    return (
        f"commit x1 {floors.commit_1:,.0f}/s (one commit p50 {floors.commit_p50_ms:.2f} ms,"
        f" p99 {floors.commit_p99_ms:.2f} ms), commit x8 {eight}/s, claim+ack {floors.claim_ack:,.0f}/s"
    )


def table(results: Sequence[BenchResult]) -> list[str]:
    """Several Worlds side by side, one row each; the bridge column is the overhead inside their figures."""
    writers = sorted({w for r in results for w in r.events_per_second})
    header = [
        "world",
        *(f"events/s x{w}" for w in writers),
        f"events/s {PROCESSES}procs",
        "msgs/s",
        "p50 ms",
        "p99 ms",
        "floors x1/x8/claim+ack, commit p50/p99 ms",
        "vs peer msgs/p50/p99",
        "bridge rtt ms",
    ]
    rows = []
    for r in results:
        rows.append(
            [
                r.world,
                *(r.cell(f"events x{w}", r.events_per_second.get(w)) for w in writers),
                r.cell("events procs", r.processes_events_per_second),
                r.cell("queue", r.messages_per_second),
                f"{r.latency_p50_ms:.2f}",
                f"{r.latency_p99_ms:.2f}",
                _floors_short(r.floors),
                r.versus_peer(),
                f"{r.round_trip_p50_ms:.3f}" if r.round_trip_p50_ms is not None else "- (in-process)",
            ]
        )
        if r.peer is not None:
            rows.append(_peer_row(r, len(writers)))
    return aligned([header, *rows])


def _peer_row(result: BenchResult, writers: int) -> list[str]:
    """The peer measured beside ``result``'s World: its queue figures, or why it has none."""
    peer = result.peer
    assert peer is not None
    label = f"{result.world}: peer {peer.name}"
    if peer.missing is not None or peer.messages_per_second is None:
        return [f"{label}: {peer.missing}", *["-"] * (writers + 6), "- (in-process)"]
    ratio = f" ({peer.messages_per_second / result.floors.claim_ack:.2f}x)" if result.floors else ""
    return [
        label,
        *["-"] * (writers + 1),
        f"{peer.messages_per_second:,.0f}{ratio}",
        f"{peer.latency_p50_ms:.2f}",
        f"{peer.latency_p99_ms:.2f}",
        "(same server)",
        "-",
        "- (in-process)",
    ]


def _floors_short(floors: Floors | None) -> str:
    if floors is None:
        return "-"
    eight = f"{floors.commit_8:,.0f}" if floors.commit_8 is not None else "-"
    return (
        f"{floors.storage} {floors.commit_1:,.0f}/{eight}/{floors.claim_ack:,.0f},"
        f" {floors.commit_p50_ms:.2f}/{floors.commit_p99_ms:.2f}"
    )


@runtime_checkable
class _Bridged(Protocol):
    """A World behind a bridge, with a round trip that does no work (``NodeWorld.ping``)."""

    async def ping(self) -> None: ...


async def round_trips(world: World, samples: int) -> list[float] | None:
    """Milliseconds per no-op round trip, or ``None`` if the World has no bridge to measure."""
    if not isinstance(world, _Bridged):
        return None
    await world.ping()  # the first call starts the bridge
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await world.ping()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def one_run(world: World) -> None:
    """The six events of a run with one step, as the runtime writes them, each awaited before the next."""
    created = await world.events.create(None, _run_created())
    assert created.run is not None
    for request in after_run_created(created.run.run_id):
        await world.events.create(created.run.run_id, request)


def after_run_created(run_id: str) -> tuple[EventRequest, ...]:
    """The five events that follow ``run_created`` in the bench's run (for benchmarks that drive a World's parts)."""
    # Step ids unique across runs too: world-postgres 4.3.7 keys steps by step id alone (docs/verdicts.md).
    step_id = f"{run_id}-s"
    return (
        EventRequest(event_type="run_started"),
        EventRequest(
            event_type="step_created",
            correlation_id=step_id,
            event_data={"step_name": "s", "input": bench_floors.PAYLOAD},
        ),
        EventRequest(event_type="step_started", correlation_id=step_id),
        EventRequest(event_type="step_completed", correlation_id=step_id, event_data={"result": b"\x00"}),
        EventRequest(event_type="run_completed", event_data={"output": b"\x00"}),
    )


async def lifecycle_rate(world: World, runs: int, in_flight: int) -> float:
    """Events per second of ``runs`` lifecycles with ``in_flight`` of them at a time."""
    await one_run(world)  # opens connections and files outside the clock
    remaining: Iterator[int] = iter(range(runs))

    async def worker() -> None:
        for _ in remaining:
            await one_run(world)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return runs * EVENTS_PER_RUN / (time.perf_counter() - started)


def processes_rate(backend: WorldBackend, config: WorldConfig, runs: int) -> float:
    """Events per second of ``runs`` lifecycles shared by 4 processes, each opening the same World.

    The children are forked once the World is migrated; each opens its World,
    warms up, then waits at a barrier, so the clock covers only the lifecycles.
    """
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES + 1)
    finished: multiprocessing.Queue[tuple[str, float]] = context.Queue()
    per_process = max(1, runs // PROCESSES)
    children = [
        context.Process(target=_process_body, args=(backend, config, per_process, barrier, finished))
        for _ in range(PROCESSES)
    ]
    for child in children:
        child.start()
    try:
        barrier.wait(timeout=120)
        started = time.monotonic()
        ends = []
        for _ in children:
            outcome, value = finished.get(timeout=600)
            if outcome != "ok":
                raise RuntimeError(f"a benchmark process failed: {value}")
            ends.append(value)
        return per_process * PROCESSES * EVENTS_PER_RUN / (max(ends) - started)
    finally:
        for child in children:
            child.join(timeout=60)


def _process_body(
    backend: WorldBackend,
    config: WorldConfig,
    runs: int,
    barrier: Any,
    finished: multiprocessing.Queue[tuple[str, Any]],
) -> None:
    async def body(world: World) -> None:
        await one_run(world)
        barrier.wait(timeout=120)
        remaining = iter(range(runs))

        async def worker() -> None:
            for _ in remaining:
                await one_run(world)

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT_PER_PROCESS)))
        finished.put(("ok", time.monotonic()))

    try:
        asyncio.run(_with_world(backend, config, body))
    except BaseException as error:  # reported to the parent, which fails the benchmark
        barrier.abort()
        finished.put(("error", repr(error)))


def _run_created() -> EventRequest:
    return EventRequest(
        event_type="run_created",
        event_data={"deployment_id": "bench", "workflow_name": "bench", "input": bench_floors.PAYLOAD},
    )


def run(
    backend: WorldBackend,
    settings: WorldConfig,
    *,
    events: int = 3000,
    messages: int = 1000,
    latency_samples: int = 200,
    writers: Sequence[int] = (1, 8),
    repeats: int = 3,
) -> BenchResult:
    """Run every measurement ``repeats`` times on fresh instances; report medians and ratios to floors.

    ``events`` is per lifecycle figure (``events // 6`` runs); the floors do as
    many commits (at most ``FLOOR_COMMITS``), on the storage of a fresh instance in the same sandbox.
    """
    runs = max(1, events // EVENTS_PER_RUN)
    rates: dict[int, list[float]] = {w: [] for w in writers}
    process_rates: list[float] = []
    queue_rates: list[float] = []
    p50s: list[float] = []
    p99s: list[float] = []
    trips: list[float] = []
    floors: list[Floors] = []
    peer_runs: list[tuple[float, list[float]]] = []
    peer_missing: str | None = None
    on_postgres = False
    with backend.sandbox(settings) as sandbox:
        for _ in range(repeats):
            with sandbox.instance() as config:
                on_postgres = bench_floors.storage_of(config) == "postgres"
                measured_floors = bench_floors.measure(config, min(events, FLOOR_COMMITS))
            if measured_floors is not None:
                floors.append(measured_floors)
            for w in writers:
                with sandbox.instance() as config:
                    rates[w].append(
                        asyncio.run(_with_world(backend, config, partial(lifecycle_rate, runs=runs, in_flight=w)))
                    )
            if Capability.MULTI_PROCESS in backend.capabilities:
                with sandbox.instance() as config:
                    process_rates.append(processes_rate(backend, config, runs))
            with sandbox.instance() as config:
                rate, latencies = asyncio.run(
                    _with_world(
                        backend, config, partial(queue_rate_and_latency, count=messages, samples=latency_samples)
                    )
                )
            queue_rates.append(rate)
            p50s.append(percentile(latencies, 0.50))
            p99s.append(percentile(latencies, 0.99))
            peer_missing = bench_pgqueuer.missing() if on_postgres else None
            if on_postgres and peer_missing is None:
                with sandbox.instance() as config:
                    peer_runs.append(asyncio.run(bench_pgqueuer.measure(config["url"], messages, latency_samples)))
            with sandbox.instance() as config:
                measured = asyncio.run(_with_world(backend, config, partial(round_trips, samples=latency_samples)))
            if measured is not None:
                trips.append(percentile(measured, 0.50))
    events_per_second = {w: statistics.median(r) for w, r in rates.items()}
    processes = statistics.median(process_rates) if process_rates else None
    floor = bench_floors.median_floors(floors)
    messages_per_second = statistics.median(queue_rates)
    latency_p50_ms = statistics.median(p50s)
    latency_p99_ms = statistics.median(p99s)
    peer = _peer(peer_runs, peer_missing) if on_postgres else None
    ratios = _ratios(events_per_second, processes, messages_per_second, floor)
    if peer is not None and peer.messages_per_second is not None:
        assert peer.latency_p50_ms is not None and peer.latency_p99_ms is not None
        ratios["queue vs peer"] = messages_per_second / peer.messages_per_second
        ratios["p50 vs peer"] = peer.latency_p50_ms / latency_p50_ms
        ratios["p99 vs peer"] = peer.latency_p99_ms / latency_p99_ms
    return BenchResult(
        world=backend.id,
        repeats=repeats,
        events_per_second=events_per_second,
        messages_per_second=messages_per_second,
        latency_p50_ms=latency_p50_ms,
        latency_p99_ms=latency_p99_ms,
        round_trip_p50_ms=statistics.median(trips) if trips else None,
        processes_events_per_second=processes,
        floors=floor,
        peer=peer,
        ratios=ratios,
    )


def _peer(runs: Sequence[tuple[float, list[float]]], missing: str | None) -> PeerQueue:
    """The peer's medians over the repetitions, like the World's own figures."""
    name = bench_pgqueuer.name()
    if missing is not None or not runs:
        return PeerQueue(name, missing=missing)
    return PeerQueue(
        name,
        messages_per_second=statistics.median(rate for rate, _ in runs),
        latency_p50_ms=statistics.median(percentile(latencies, 0.50) for _, latencies in runs),
        latency_p99_ms=statistics.median(percentile(latencies, 0.99) for _, latencies in runs),
    )


def _ratios(
    events_per_second: dict[int, float], processes: float | None, messages: float, floor: Floors | None
) -> dict[str, float]:
    """Rates over floors: 1 in flight over the one-writer commit floor, more over the many-writer one if any."""
    ratios: dict[str, float] = {}
    if 1 in events_per_second and max(events_per_second) > 1:
        ratios["scaling"] = events_per_second[max(events_per_second)] / events_per_second[1]
    if floor is None:
        return ratios
    many = floor.commit_8 if floor.commit_8 is not None else floor.commit_1
    for w, rate in events_per_second.items():
        ratios[f"events x{w}"] = rate / (floor.commit_1 if w == 1 else many)
    if processes is not None:
        ratios["events procs"] = processes / many
    ratios["queue"] = messages / floor.claim_ack
    return ratios


async def _with_world(backend: WorldBackend, config: WorldConfig, body: Any) -> Any:
    world = backend.factory(config)
    try:
        return await body(world)
    finally:
        await world.close()
