"""The local World's error boundary: SQLite's errors leave it only as typed SDK errors (issue 13 item 7).

Each condition is real: a lock held by another connection, a full file system
(a tiny tmpfs), a write the kernel refuses (``RLIMIT_FSIZE``), and, for the
translation table, errors that a scratch SQLite database really raises.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.builders import new_run, step_request
from reference_worlds.local import LocalWorld
from reference_worlds.local.database import DB_FILE
from reference_worlds.local.errors import translate
from worlds_sdk.errors import (
    EntityConflictError,
    IncompatibleFormatError,
    ThrottleError,
    ValidationError,
    WorkflowWorldError,
    WorldUnavailableError,
)


def test_a_write_locked_out_past_busy_timeout_is_a_throttle_error_and_the_world_recovers(
    config: dict[str, Any],
) -> None:
    async def main() -> None:
        world = LocalWorld({**config, "busy_timeout": 0.2})
        try:
            run = await new_run(world)
            holder = sqlite3.connect(Path(config["path"]) / DB_FILE, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another writer keeps the write lock
            try:
                with pytest.raises(ThrottleError, match="locked by another writer") as caught:
                    await new_run(world)
                assert caught.value.status == 429 and caught.value.retry_after == 1.0
                assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
                assert (await world.runs.get(run.run_id)).run_id == run.run_id  # WAL readers go on
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            await new_run(world)
            assert len((await world.runs.list()).data) == 2
        finally:
            await world.close()

    asyncio.run(main())


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a file system that really fills up (mounting needs root)."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def test_a_full_disk_is_world_unavailable_keeps_every_event_whole_and_recovers(tiny_disk: Path) -> None:
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * 256 * 1024)  # freed afterwards, to show the World recovers

    async def main() -> None:
        world = LocalWorld({"path": str(tiny_disk / "world")})
        try:
            created = []
            with pytest.raises(WorldUnavailableError, match="the disk is full") as caught:
                for n in range(100):
                    created.append((await new_run(world, input=bytes([n]) * 64 * 1024)).run_id)
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
            assert created, "some runs fit before the disk filled up"
            stored = {run.run_id: run.input for run in (await world.runs.list()).data}
            assert stored == {run_id: bytes([n]) * 64 * 1024 for n, run_id in enumerate(created)}
            filler.unlink()
            await new_run(world)
        finally:
            await world.close()

    asyncio.run(main())


def test_text_sqlite_cannot_store_is_a_validation_error_not_a_raw_unicode_error(config: dict[str, Any]) -> None:
    """A lone surrogate is no Unicode scalar value: SQLite's UTF-8 binding refuses it (as PostgreSQL does)."""

    async def main() -> None:
        world = LocalWorld(config)
        try:
            run = await new_run(world)
            calls = [
                world.events.create(run.run_id, step_request("step_created", "\ud800")),
                world.write_to_stream("\ud800", run.run_id, b"x"),
                world.queue("__wkf_step_x", {"text": "\ud800"}),
                world.runs.get("wrun_\ud800"),
            ]
            for call in calls:
                with pytest.raises(ValidationError, match="cannot be encoded as UTF-8"):
                    await call
            assert [e.event_type for e in (await world.events.list(run.run_id)).data] == ["run_created"]
        finally:
            await world.close()

    asyncio.run(main())


REFUSED_WRITE = """
import asyncio, resource, signal, sys
from conformance.builders import new_run, step_request
from reference_worlds.local import LocalWorld
from worlds_sdk.errors import WorkflowWorldError

async def main():
    world = LocalWorld({"path": sys.argv[1]})
    await new_run(world)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the kernel answers EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
    try:
        await new_run(world, input=b"x" * 65536)
    except WorkflowWorldError as exc:
        print(type(exc).__name__, exc.__cause__.sqlite_errorname, exc)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    await new_run(world)
    print(len((await world.runs.list()).data))
    await world.close()

asyncio.run(main())
"""


def test_an_io_error_is_world_unavailable_and_the_world_recovers(config: dict[str, Any]) -> None:
    """A child process whose file-size limit makes the kernel refuse SQLite's next write (EFBIG)."""
    done = subprocess.run(
        [sys.executable, "-c", REFUSED_WRITE, config["path"]], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    error, count = done.stdout.strip().splitlines()
    assert error.startswith("WorldUnavailableError SQLITE_IOERR_WRITE local World database")
    assert "I/O error" in error
    assert count == "2", "the refused run is absent, the next one is stored"


def _busy(path: Path) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    sqlite3.connect(path, timeout=0).execute("BEGIN IMMEDIATE")


def _read_only(path: Path) -> None:
    sqlite3.connect(path).execute("CREATE TABLE t (x)")
    sqlite3.connect(f"file:{path}?mode=ro", uri=True).execute("INSERT INTO t VALUES (1)")


def _cannot_open(path: Path) -> None:
    sqlite3.connect(path / "no" / "such" / "dir.db")


def _not_a_database(path: Path) -> None:
    path.write_bytes(b"plain text, not SQLite " * 100)
    sqlite3.connect(path).execute("SELECT * FROM sqlite_master")


def _full(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("PRAGMA max_page_count = 2")
    conn.execute("INSERT INTO t VALUES (zeroblob(100000))")


def _too_big(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100)
    conn.execute("SELECT ?", (b"x" * 1000,))


def _unique(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1), (1)")


def _syntax(path: Path) -> None:
    sqlite3.connect(path).execute("SELEKT 1")


@pytest.mark.parametrize(
    ("cause", "expected", "says"),
    [
        (_busy, ThrottleError, "locked by another writer"),
        (_read_only, WorldUnavailableError, "read-only"),
        (_cannot_open, WorldUnavailableError, "cannot be opened"),
        (_not_a_database, IncompatibleFormatError, "not SQLite"),
        (_full, WorldUnavailableError, "the disk is full"),
        (_too_big, ValidationError, "too large"),
        (_unique, EntityConflictError, "UNIQUE constraint failed"),
        (_syntax, WorkflowWorldError, "SQLite error"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_each_sqlite_error_becomes_its_typed_error(
    tmp_path: Path, cause: Callable[[Path], None], expected: type[WorkflowWorldError], says: str
) -> None:
    path = tmp_path / "scratch.sqlite3"
    with pytest.raises(sqlite3.Error) as raised:
        cause(path)
    translated = translate(raised.value, path)
    assert type(translated) is expected
    assert says in str(translated)
