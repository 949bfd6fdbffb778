"""Profile a World's hot paths under py-spy: where the time of ``events.create`` and the queue goes.

    py-spy record --format raw --rate 500 --subprocesses -o /tmp/local-events.txt -- \\
        python benchmarks/profile_hot_paths.py run local events
    python benchmarks/profile_hot_paths.py summarize /tmp/local-events.txt

``run`` drives the same workload as ``worlds bench`` (:mod:`worlds_sdk.bench`):
``events`` is the 6-event run lifecycle with 1 run in flight, ``queue`` a burst of
queued messages through the World's own consumer, ``paced`` messages sent one at a
time (enqueue → handler, the latency path). py-spy samples every thread,
so the local World's database thread and psycopg's are seen too (cProfile sees
only the thread that started it). ``summarize`` reads py-spy's collapsed stacks
and prints, per function, the share of samples it was on the stack (inclusive)
and on top (self), heaviest first: the summaries in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
from functools import partial
from pathlib import Path

from worlds_sdk import bench, bench_queue
from worlds_sdk.discovery import resolve_world


def run(world: str, path: str, count: int) -> None:
    backend = resolve_world(world)
    with backend.sandbox({}) as sandbox, sandbox.instance() as config:
        if path == "events":
            body = partial(bench.lifecycle_rate, runs=count // bench.EVENTS_PER_RUN, in_flight=1)
        elif path == "queue":
            body = partial(bench_queue.queue_rate_and_latency, count=count, samples=1)
        else:  # paced: one message at a time, the latency path alone
            body = partial(bench_queue.queue_rate_and_latency, count=1, samples=count)
        print(asyncio.run(bench._with_world(backend, config, body)))


def summarize(path: Path, top: int) -> None:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        frames = [frame.split(" (")[0] + " (" + frame.split("/")[-1] for frame in stack.split(";")[1:]]
        total += samples
        for frame in set(frames):
            inclusive[frame] += samples
        if frames:
            own[frames[-1]] += samples
    print(f"{total} samples")
    for frame, samples in inclusive.most_common(top):
        print(f"{100 * samples / total:5.1f}% incl {100 * own[frame] / total:5.1f}% self  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("world")
    run_parser.add_argument("path", choices=["events", "queue", "paced"])
    run_parser.add_argument("--count", type=int, default=3000)
    summary = commands.add_parser("summarize")
    summary.add_argument("file", type=Path)
    summary.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if args.command == "run":
        run(args.world, args.path, args.count)
    else:
        summarize(args.file, args.top)


if __name__ == "__main__":
    main()
