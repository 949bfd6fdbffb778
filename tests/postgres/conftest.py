"""Fixtures for the Postgres World's own tests: one real server per session, a fresh schema per test.

The server comes from the plugin's sandbox, so these tests start PostgreSQL the
same way ``pytest --world=postgres`` does: ``$WORLDS_POSTGRES_URL``, else
testcontainers, else the local server binaries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from reference_worlds.postgres.database import application_name
from reference_worlds.postgres.plugin import PostgresSandbox, postgres_sandbox

T = TypeVar("T")
CHILD = Path(__file__).with_name("pg_child.py")


@pytest.fixture(scope="session")
def pg_sandbox() -> Iterator[PostgresSandbox]:
    with postgres_sandbox({}) as sandbox:
        yield sandbox


@pytest.fixture
def pg_config(pg_sandbox: PostgresSandbox) -> Iterator[dict[str, Any]]:
    """A freshly migrated schema of its own, with short leases, polls and back-offs."""
    with pg_sandbox.instance() as config:
        yield {**config, "backoff_initial": 0.05, "backoff_max": 0.2}


class Child:
    """A process running ``pg_child.py``: it opens the World, says ``ready``, waits for ``go``, reports."""

    def __init__(self, config: Mapping[str, Any], op: Mapping[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps({"config": dict(config), **op})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line + (self.proc.stderr.read() if self.proc.stderr else "")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = 60.0) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result


def _race(config: Mapping[str, Any], ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    children = [Child(config, op) for op in ops]
    for child in children:
        child.wait_ready()
    for child in children:
        child.go()
    return [child.result() for child in children]


@pytest.fixture
def race() -> Callable[[Mapping[str, Any], list[dict[str, Any]]], list[dict[str, Any]]]:
    """``race(config, ops)``: one process per op; all open the World, then go at once; their outcomes."""
    return _race


class WorldConnections:
    """The server-side view of one World's connections (pools and LISTEN), found by application_name."""

    def __init__(self, url: str, schema: str) -> None:
        self.url = url
        self.name = application_name(schema)

    def count(self, query: str) -> int:
        """The integer result of ``query``, whose one parameter is the World's application_name."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(query.encode(), (self.name,)).fetchone()
        return int(row[0]) if row else 0

    def terminate(self) -> int:
        """``pg_terminate_backend`` on every connection of the World, waiting until each backend has exited.

        Once a backend has exited, its client's socket holds the FATAL message, so the
        World sees the connection dead before it sends anything. Without the wait, a
        statement sent in between meets the dying backend, and its outcome is unknown to
        the World (a write then fails with ``WorldUnavailableError``, see
        ``Database.fetchall``). Returns how many connections there were.
        """
        return self.count(
            "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity WHERE application_name = %s"
        )

    def listening(self) -> bool:
        """Whether the World's LISTEN connection is up (its last statement was a LISTEN)."""
        return bool(
            self.count("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND query LIKE 'LISTEN%%'")
        )


@pytest.fixture
def connections(pg_config: dict[str, Any]) -> WorldConnections:
    """The connections of the test's own World (``pg_config``)."""
    return WorldConnections(pg_config["url"], pg_config["schema"])


@pytest.fixture
def connections_of() -> type[WorldConnections]:
    """``connections_of(url, schema)``: the connections of a World on another server or schema."""
    return WorldConnections
