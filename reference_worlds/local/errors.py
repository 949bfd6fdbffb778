"""The one boundary where SQLite's errors become SDK errors.

Every call into the database of a local World -- opening it, and each read or
write transaction (:class:`~reference_worlds.local.database.Database`) -- runs
inside :func:`translated`, so callers and the conformance suite only ever see
``worlds_sdk.errors`` types, as with the Postgres World's ``errors.py``. The
SQLite result code decides (``sqlite3.Error.sqlite_errorcode``; its low byte is
the primary code, the rest refines it, e.g. ``SQLITE_IOERR_WRITE``):

- the write lock still held by another connection after ``busy_timeout``
  (``SQLITE_BUSY``, ``SQLITE_LOCKED``) is :class:`ThrottleError`: the World is
  busy, a later try can succeed;
- a full disk, an I/O error, a read-only or unopenable file, a corrupt database,
  no memory are :class:`WorldUnavailableError`: the storage under the World is
  broken until an operator acts;
- a file that is not SQLite is :class:`IncompatibleFormatError`;
- a value too large for SQLite, or text that is not valid UTF-8 (a lone
  surrogate), is :class:`ValidationError`, and a unique index that refuses a
  row (a backstop under the rules) is :class:`EntityConflictError`.

Anything else is a plain :class:`WorkflowWorldError` naming SQLite's error.
Errors raised by the World's own code inside a transaction (rule violations)
pass through untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from worlds_sdk.errors import (
    EntityConflictError,
    IncompatibleFormatError,
    ThrottleError,
    ValidationError,
    WorkflowWorldError,
    WorldUnavailableError,
)

_UNAVAILABLE = {
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_IOERR: "I/O error",
    sqlite3.SQLITE_READONLY: "the database is read-only",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
    sqlite3.SQLITE_PERM: "access denied",
    sqlite3.SQLITE_CORRUPT: "the database is corrupt (restore it from a backup)",
    sqlite3.SQLITE_NOMEM: "out of memory",
    sqlite3.SQLITE_NOLFS: "the file system cannot hold a file this large",
    sqlite3.SQLITE_PROTOCOL: "the file-locking protocol failed",
}


def translate(exc: sqlite3.Error, path: Path) -> WorkflowWorldError:
    """The SDK error for a SQLite error on the database at ``path``."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    detail = f"{exc} ({getattr(exc, 'sqlite_errorname', type(exc).__name__)})"
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return ThrottleError(
            f"local World database {path} stayed locked by another writer for the whole busy_timeout: {detail}",
            retry_after=1.0,
        )
    if primary in _UNAVAILABLE:
        return WorldUnavailableError(f"local World database {path}: {_UNAVAILABLE[primary]}: {detail}")
    if primary == sqlite3.SQLITE_NOTADB:
        return IncompatibleFormatError(f"{path} is not a local World database (not SQLite): {detail}")
    if primary == sqlite3.SQLITE_TOOBIG:
        return ValidationError(f"a value is too large to store: {detail}")
    if primary == sqlite3.SQLITE_CONSTRAINT:
        return EntityConflictError(f"conflicting write: {detail}")
    return WorkflowWorldError(f"local World database {path}: SQLite error: {detail}")


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """Run database calls; re-raise SQLite errors as SDK errors (the cause is kept)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    except UnicodeEncodeError as exc:  # sqlite3 binds str as UTF-8: a lone surrogate cannot be stored
        raise ValidationError(f"text cannot be encoded as UTF-8: {exc.reason}") from exc
