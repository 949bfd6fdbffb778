"""PgQueuer beside the Postgres World in ``worlds bench``: it runs end to end, and its absence is said plainly.

Only that it works: no figure is asserted (the bench is never a timed test).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import psycopg
import pytest

from reference_worlds.postgres.plugin import postgres_sandbox
from worlds_sdk import bench, bench_pgqueuer
from worlds_sdk.bench_pgqueuer import PeerQueue
from worlds_sdk.discovery import resolve_world


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_sandbox({}) as sandbox:
        yield sandbox.url


def _schemas(url: str, like: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (like,)).fetchall()
    return [row[0] for row in rows]


@pytest.mark.postgres
def test_the_postgres_world_is_benched_beside_pgqueuer_on_its_server_and_compared_with_it(pg_url: str) -> None:
    result = bench.run(
        resolve_world("postgres"),
        {"url": pg_url},
        events=12,
        messages=8,
        latency_samples=3,
        writers=(1,),
        repeats=1,
    )

    assert result.peer is not None and result.peer.missing is None
    assert result.peer.name == "pgqueuer 1.6.0"
    assert result.peer.messages_per_second is not None and result.peer.messages_per_second > 0
    assert result.peer.latency_p99_ms is not None and result.peer.latency_p50_ms is not None
    assert result.peer.latency_p99_ms >= result.peer.latency_p50_ms > 0
    assert {"queue vs peer", "p50 vs peer", "p99 vs peer"} <= set(result.ratios)
    assert result.floors is not None and result.floors.commit_p99_ms >= result.floors.commit_p50_ms > 0
    assert any(line.startswith("  peer pgqueuer 1.6.0 (same server") for line in result.lines())
    header, ours, peer = bench.table([result])
    assert "vs peer msgs/p50/p99" in header and ours.startswith("postgres ")
    assert peer.startswith("postgres: peer pgqueuer 1.6.0 ")
    assert _schemas(pg_url, "pgqueuer\\_%") == []  # PgQueuer's schema is dropped after each run


def test_a_missing_pgqueuer_is_said_in_the_output_not_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pgqueuer", None)  # what `import pgqueuer` meets when it is not installed

    missing = bench_pgqueuer.missing()

    assert missing == "pgqueuer not installed (pip install 'worlds-sdk[bench]'); not measured"
    result = bench.BenchResult(
        world="postgres",
        repeats=1,
        events_per_second={1: 100.0},
        messages_per_second=50.0,
        latency_p50_ms=1.0,
        latency_p99_ms=2.0,
        peer=PeerQueue("pgqueuer", missing=missing),
    )
    assert f"  peer pgqueuer (same server, same queue workload): {missing}" in result.lines()
    _, ours, peer = bench.table([result])
    assert peer.startswith(f"postgres: peer pgqueuer: {missing}")
    assert result.versus_peer() == "-" and "  -  " in ours
