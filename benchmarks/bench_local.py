"""Throughput of the local World on this machine: ``python benchmarks/bench_local.py``.

Two figures, each the median of three runs in a fresh temporary directory with the
default (durable) settings -- WAL, ``synchronous=FULL``, one fsync per commit:

- sequential ``events.create`` per second (one caller, each call awaited);
- queue messages per second, enqueue to handled (one producer, the built-in consumer
  with its default concurrency, a handler that only counts).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from reference_worlds.local import LocalWorld
from worlds_sdk.models import EventRequest, MessageMeta

QUEUE = "__wkf_step_bench"


async def events_per_second(path: Path, count: int) -> float:
    world = LocalWorld({"path": str(path)})
    try:
        created = await world.events.create(
            None,
            EventRequest(
                event_type="run_created",
                event_data={"deployment_id": "bench", "workflow_name": "bench", "input": b"\x00" * 64},
            ),
        )
        assert created.run is not None
        run_id = created.run.run_id
        started = time.perf_counter()
        for i in range(count):
            await world.events.create(
                run_id,
                EventRequest(
                    event_type="step_created", correlation_id=f"step_{i}", event_data={"step_name": "s", "input": b"x"}
                ),
            )
        return count / (time.perf_counter() - started)
    finally:
        await world.close()


async def messages_per_second(path: Path, count: int) -> float:
    world = LocalWorld({"path": str(path)})
    handled = 0
    all_handled = asyncio.Event()

    async def handler(message: Any, meta: MessageMeta) -> None:
        nonlocal handled
        handled += 1
        if handled == count:
            all_handled.set()

    try:
        world.register_handler("__wkf_step_", handler)
        await world.start()
        started = time.perf_counter()
        for i in range(count):
            await world.queue(QUEUE, {"i": i, "payload": b"\x00" * 64})
        await all_handled.wait()
        return count / (time.perf_counter() - started)
    finally:
        await world.close()


def median_of(runs: int, measure: Any, count: int) -> tuple[float, list[float]]:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
            results.append(asyncio.run(measure(Path(tmp) / "world", count)))
    return statistics.median(results), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events per run (default 1000)")
    parser.add_argument("--messages", type=int, default=500, help="messages per run (default 500)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is reported (default 3)")
    args = parser.parse_args()
    for label, measure, count in (
        ("events.create (sequential)", events_per_second, args.events),
        ("queue enqueue->handled", messages_per_second, args.messages),
    ):
        median, results = median_of(args.runs, measure, count)
        print(f"{label:28} {median:8.0f} /s   (runs: {', '.join(f'{r:.0f}' for r in results)})")


if __name__ == "__main__":
    main()
