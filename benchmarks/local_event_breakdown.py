"""Where the time of one local-World ``events.create`` goes, against the SQLite commit floor.

    python benchmarks/local_event_breakdown.py [--runs 300] [--rounds 5]

Four variants, interleaved round by round on fresh directories of the same disk
(each figure is the median of ``--rounds``):

- ``floor``: the bench's SQLite floor (:mod:`worlds_sdk.bench_floors`), one
  ``BEGIN IMMEDIATE`` insert + update commit, WAL + ``synchronous=FULL``;
- ``cpu``: the bench lifecycle through :func:`reference_worlds.local.event_writer.create_event`
  on a plain connection with ``synchronous=OFF`` (no fsync), in this thread:
  the World's own work per event (validation, snapshot, rules, encoding, SQL);
- ``direct``: the same with ``synchronous=FULL``: the work plus its own commit,
  still without the event loop and the database thread;
- ``world``: the same lifecycle through ``LocalWorld.events.create``, 1 in flight.

So ``direct - cpu`` is the commit of one event (its WAL pages and fsync),
``world - direct`` the hand-off between the event loop and the database thread
and the World's code around it, and ``floor`` what the issue's 0.4x is taken of.
Printed as microseconds per event and as events/s with the ratio to the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from reference_worlds.local import LocalWorld
from reference_worlds.local.database import _connect
from reference_worlds.local.event_writer import create_event
from worlds_sdk import SPEC_VERSION, bench, bench_floors, rules
from worlds_sdk.models import EventRequest, EventResult
from worlds_sdk.validation import validate_request


def _lifecycle(create: Callable[[str | None, EventRequest], EventResult]) -> None:
    created = create(None, bench._run_created())
    assert created.run is not None
    for request in bench.after_run_created(created.run.run_id):
        create(created.run.run_id, request)


def _direct(directory: Path, runs: int, synchronous: str) -> float:
    """Events per second of ``runs`` lifecycles through ``create_event``, in this thread."""
    conn = _connect(directory, 5.0)
    conn.execute(f"PRAGMA synchronous={synchronous}")

    def create(run_id: str | None, request: EventRequest) -> EventResult:
        validate_request(request)
        now = datetime.now(UTC)
        target = rules.resolve_run_id(run_id, request, now)
        conn.execute("BEGIN IMMEDIATE")
        result = create_event(conn, target, request, now, SPEC_VERSION)
        conn.execute("COMMIT")
        return result

    try:
        _lifecycle(create)  # warm-up, outside the clock
        started = time.perf_counter()
        for _ in range(runs):
            _lifecycle(create)
        return runs * bench.EVENTS_PER_RUN / (time.perf_counter() - started)
    finally:
        conn.close()


def _world(directory: Path, runs: int) -> float:
    async def body() -> float:
        world = LocalWorld({"path": str(directory)})
        try:
            return await bench.lifecycle_rate(world, runs=runs, in_flight=1)
        finally:
            await world.close()

    return asyncio.run(body())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="lifecycles per figure")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"floor": [], "cpu": [], "direct": [], "world": []}
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(args.rounds):
            root = Path(scratch) / str(i)
            root.mkdir()
            rates["floor"].append(bench_floors._sqlite_commits(root, args.runs * bench.EVENTS_PER_RUN)[0])
            rates["cpu"].append(_direct(root / "cpu", args.runs, "OFF"))
            rates["direct"].append(_direct(root / "direct", args.runs, "FULL"))
            rates["world"].append(_world(root / "world", args.runs))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, rate in medians.items():
        print(f"{name:>7}: {1e6 / rate:7.0f} µs/event  {rate:8.0f} /s  {rate / medians['floor']:.2f}x floor")
    print(f" commit: {1e6 / medians['direct'] - 1e6 / medians['cpu']:7.0f} µs/event (direct - cpu)")
    print(f"hand-off: {1e6 / medians['world'] - 1e6 / medians['direct']:6.0f} µs/event (world - direct)")


if __name__ == "__main__":
    main()
