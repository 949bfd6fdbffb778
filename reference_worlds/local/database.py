"""The world directory's SQLite database: opening, format checks, and transactions off the event loop.

One ``world.sqlite3`` file in WAL mode with ``synchronous=FULL``: every commit
is fsynced, so a process killed at any instant leaves each transaction whole or
absent (EV-1, crash_safe). Every write is one ``BEGIN IMMEDIATE`` transaction:
it takes SQLite's write lock up front, which serialises writers across threads
and processes, so a read-decide-write inside it cannot race (multi_process).

SQLite's errors become SDK errors at one boundary (:mod:`.errors`): opening,
and every transaction handed to the worker thread.

sqlite3 calls block, so each :class:`Database` owns one connection used only
from its own single worker thread; coroutines hand it work and await the
result. Several World instances (in one process or many) each have their own.

Group commit: writes that arrive while the thread is busy (mostly waiting on the
fsync of the previous COMMIT) are run together in the next ``BEGIN IMMEDIATE``
transaction, each inside its own SAVEPOINT, and share its one COMMIT and fsync.
Each write still sees the effects of those before it (same transaction, in
arrival order); one that fails is rolled back to its savepoint alone and gets its
own error; none is answered before the COMMIT is durable; a failed COMMIT (or an
error after which SQLite itself rolled the transaction back) fails every write
of the batch, none of which was committed. A lone writer waits for nobody: its
batch is itself. The batch's answers reach the event loop in one wake-up; a
caller that gave up meanwhile (its task cancelled) is skipped, not answered --
its write may still have committed, as any write whose caller stopped waiting.
Why this is safe and what it bought: docs/performance.md.

A write that may be lost in an OS crash (``flush=False``: a queue ack, whose loss
only means a redelivery) does not wait for an fsync when its whole batch is such
writes: that batch commits with ``synchronous=NORMAL`` (in WAL mode: written to
the OS, synced by the next ``FULL`` commit or checkpoint). A batch with any other
write is fully synced, so no write that asks for durability ever waits less.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

from worlds_sdk.errors import IncompatibleFormatError, WorldUnavailableError

from .errors import translated

T = TypeVar("T")

FORMAT_VERSION = "1"
"""Bumped on any change of the stored layout; a World refuses to open another version."""

DB_FILE = "world.sqlite3"


@dataclass(frozen=True)
class _Write(Generic[T]):
    """One queued write: its work, and the awaiting caller's future, answered once the batch is committed."""

    work: Callable[[sqlite3.Connection], T]
    flush: bool
    outcome: asyncio.Future[T]


_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class Database:
    """One connection to a world directory's database, driven from a dedicated thread."""

    def __init__(self, directory: Path, *, busy_timeout: float) -> None:
        self.directory = directory
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"worlds-local:{directory.name}")
        self._conn: sqlite3.Connection | None = None
        self._queued: list[_Write[Any]] = []
        self._queued_lock = threading.Lock()
        try:
            self._conn = self._executor.submit(_connect, directory, busy_timeout).result()
        except BaseException:
            self._executor.shutdown()
            raise

    @property
    def closed(self) -> bool:
        return self._conn is None

    async def write(self, work: Callable[[sqlite3.Connection], T], *, flush: bool = True) -> T:
        """Run ``work`` in a ``BEGIN IMMEDIATE`` transaction, committed (whole) before this returns.

        ``work`` may share the transaction with writes queued beside it (group
        commit, see the module docstring); if it raises, only its own effects are
        rolled back. ``flush=False``: the commit need not be fsynced (an OS crash
        may lose it, a killed process cannot); only for writes whose loss is
        harmless.
        """
        conn = self._connection()
        queued: _Write[T] = _Write(work, flush, asyncio.get_running_loop().create_future())
        with self._queued_lock:
            self._queued.append(queued)
            first = len(self._queued) == 1
        if first:  # else a batch already submitted and not yet started will take it
            self._executor.submit(self._commit_queued, conn)
        with translated(self.directory / DB_FILE):
            return await queued.outcome

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` inside one read transaction, so its queries see one snapshot."""
        return await self._submit(lambda conn: _in_transaction(conn, "BEGIN", work))

    async def close(self) -> None:
        """Close the connection and stop the thread; later calls raise :class:`WorldUnavailableError`."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                with translated(self.directory / DB_FILE):
                    await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
            finally:
                self._executor.shutdown(wait=True)

    async def _submit(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        with translated(self.directory / DB_FILE):
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, conn)

    def _commit_queued(self, conn: sqlite3.Connection) -> None:
        """On the database thread: run every write queued so far as one batch."""
        with self._queued_lock:
            batch, self._queued = self._queued, []
        _commit_batch(conn, batch)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise WorldUnavailableError(f"the local World at {self.directory} is closed")
        return self._conn


def _in_transaction(conn: sqlite3.Connection, begin: str, work: Callable[[sqlite3.Connection], T]) -> T:
    """``work`` between ``begin`` and COMMIT; on any error the transaction is rolled back.

    SQLite itself rolls back after some errors (a full disk, an I/O error), and a
    failed COMMIT can leave the transaction open, so the rollback happens only if
    one is still open -- else it would fail and hide the real error.
    """
    conn.execute(begin)
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _commit_batch(conn: sqlite3.Connection, batch: list[_Write[Any]]) -> None:
    """``batch`` in one commit, fsynced unless no write of it asks for that (``flush=False``).

    Every write is answered whatever happens here: if switching ``synchronous``
    fails before the batch ran, each write gets that error.
    """
    outcomes: list[_Outcome] | None = None
    try:
        if any(queued.flush for queued in batch):
            outcomes = _run_batch(conn, batch)
            return
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            outcomes = _run_batch(conn, batch)
        finally:
            conn.execute("PRAGMA synchronous=FULL")
    except BaseException as exc:
        if outcomes is None:
            outcomes = [(queued.outcome, None, exc) for queued in batch]
        raise
    finally:
        if outcomes is not None:
            _answer(outcomes)


def _run_batch(conn: sqlite3.Connection, batch: list[_Write[Any]]) -> list[_Outcome]:
    """Run ``batch`` in one transaction, each write in its own savepoint, then commit once."""
    if len(batch) == 1:
        (only,) = batch
        try:
            return [(only.outcome, _in_transaction(conn, "BEGIN IMMEDIATE", only.work), None)]
        except BaseException as exc:
            return [(only.outcome, None, exc)]
    outcomes: list[_Outcome] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for queued in batch:
            conn.execute("SAVEPOINT write")
            try:
                result = queued.work(conn)
            except BaseException as exc:
                if not conn.in_transaction:
                    raise  # SQLite rolled the whole transaction back (I/O error, full disk): the batch fails
                conn.execute("ROLLBACK TO write")
                outcomes.append((queued.outcome, None, exc))
            else:
                outcomes.append((queued.outcome, result, None))
            conn.execute("RELEASE write")
        conn.execute("COMMIT")
    except BaseException as exc:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:  # even if the rollback fails too, no writer is left waiting
            outcomes = [(queued.outcome, None, exc) for queued in batch]
    return outcomes


def _answer(outcomes: list[_Outcome]) -> None:
    """Hand a committed batch's outcomes to the awaiting callers: one wake-up of each event loop per batch.

    One ``call_soon_threadsafe`` per write cost a self-pipe write and an extra turn
    of the loop each (6 % of the CPU of 8 writers in flight).
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, answers in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is left to answer
            loop.call_soon_threadsafe(_settle, answers)


def _settle(answers: list[_Outcome]) -> None:
    """On the callers' loop: answer each write, except one whose caller gave up (cancelled) meanwhile."""
    for future, result, error in answers:
        if future.done():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


def _prepare_directory(directory: Path) -> None:
    """Create the world directory if missing -- but not its parents -- and check it is usable.

    Only the last component is created: a configured path whose parent does not
    exist is far more likely a typo than a wish for a new tree of directories.
    """
    try:
        directory.mkdir(exist_ok=True)
    except FileExistsError:
        raise WorldUnavailableError(f"local World path {directory} exists but is not a directory") from None
    except FileNotFoundError:
        raise WorldUnavailableError(
            f"local World path {directory}: parent directory {directory.parent} does not exist"
        ) from None
    except OSError as exc:
        raise WorldUnavailableError(f"local World path {directory} cannot be used: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise WorldUnavailableError(f"local World path {directory} is not writable")


def _connect(directory: Path, busy_timeout: float) -> sqlite3.Connection:
    _prepare_directory(directory)
    path = directory / DB_FILE
    with translated(path):
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            _in_transaction(conn, "BEGIN IMMEDIATE", _ensure_schema)
        except BaseException:
            conn.close()
            raise
    return conn


def _ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the tables in a new database, or check the format version of an existing one."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        found = None if row is None else row[0]
        if found != FORMAT_VERSION:
            raise IncompatibleFormatError(
                f"local World database {_path_of(conn)} has format version {found!r}; this version of "
                f"reference_worlds.local reads format {FORMAT_VERSION!r}. Use a matching version, or a new directory."
            )
        return
    if tables:
        raise IncompatibleFormatError(f"{_path_of(conn)} is an SQLite database, but not a local World's")
    for statement in _schema_statements():
        conn.execute(statement)
    conn.execute("INSERT INTO meta (key, value) VALUES ('format_version', ?)", (FORMAT_VERSION,))


def _schema_statements() -> Iterator[str]:
    text = resources.files("reference_worlds.local").joinpath("schema.sql").read_text("utf-8")
    statement = ""
    for line in text.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def _path_of(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return str(row[2])
