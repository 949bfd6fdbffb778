"""One lifecycle figure of a World, for A/B comparisons of two versions of the code, a few seconds apart.

    python benchmarks/lifecycle_ab.py WORLD IN_FLIGHT RUNS ['{"pool_size": 8}']

Prints the events per second of ``RUNS`` lifecycles (``worlds_sdk.bench.lifecycle_rate``)
with ``IN_FLIGHT`` at a time, on a fresh instance of the World's sandbox (for the Postgres
World: a fresh schema on ``$WORLDS_POSTGRES_URL``), the optional JSON merged into its config.
``worlds bench`` divides by a floor measured minutes earlier, which on a noisy machine can hide
a 20 % change; alternating two checkouts of the code with this script, round by round, does not::

    for i in 1 2 3 4 5 6; do
        PYTHONPATH=/tmp/before python benchmarks/lifecycle_ab.py postgres 1 100 '{"pool_size": 8}'
        python benchmarks/lifecycle_ab.py postgres 1 100 '{"pool_size": 8}'
    done

(``/tmp/before`` holding ``git archive <commit> | tar -x``: ``PYTHONPATH`` comes before the
editable install.)
"""

from __future__ import annotations

import asyncio
import json
import sys
from functools import partial

from worlds_sdk import bench
from worlds_sdk.discovery import resolve_world


def main() -> None:
    world, in_flight, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    backend = resolve_world(world)
    with backend.sandbox({}) as sandbox, sandbox.instance() as config:
        body = partial(bench.lifecycle_rate, runs=runs, in_flight=in_flight)
        print(f"{asyncio.run(bench._with_world(backend, {**config, **extra}, body)):.0f}")


if __name__ == "__main__":
    main()
