"""The one boundary where driver errors become SDK errors.

Every database call of the Postgres World runs inside :func:`translated`, so
callers -- and the conformance suite -- only ever see ``worlds_sdk.errors``
types. The SQL functions signal rule violations with custom SQLSTATEs (class
``WW``, listed in ``sql/migrations/0001_initial.sql``); connection trouble of any
kind is :class:`~worlds_sdk.errors.WorldUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg

from worlds_sdk.errors import (
    EntityConflictError,
    HookNotFoundError,
    RunExpiredError,
    RunNotSupportedError,
    StepNotFoundError,
    TooEarlyError,
    ValidationError,
    WaitNotFoundError,
    WorkflowRunNotFoundError,
    WorkflowWorldError,
    WorldUnavailableError,
)

_RULE_ERRORS: dict[str, type[WorkflowWorldError]] = {
    "WWNFR": WorkflowRunNotFoundError,
    "WWNFS": StepNotFoundError,
    "WWNFH": HookNotFoundError,
    "WWNFW": WaitNotFoundError,
    "WW409": EntityConflictError,
    "WW410": RunExpiredError,
}

_BAD_INPUT = {
    "22P05": "strings stored in PostgreSQL cannot contain NUL characters",  # untranslatable_character
    "22021": "text is not valid UTF-8",  # character_not_in_repertoire
    "22007": "not a valid date/time",  # invalid_datetime_format
    "22008": "date/time out of range",  # datetime_field_overflow
    "22P02": "invalid value",  # invalid_text_representation
    "22023": "invalid value",  # invalid_parameter_value
}

_UNAVAILABLE_CLASSES = ("08", "28", "3D", "53", "57")  # connection, auth, database, resources, operator


def translate(exc: psycopg.Error) -> WorkflowWorldError:
    """The SDK error for a driver error."""
    diag = exc.diag
    state = exc.sqlstate or ""
    message = diag.message_primary or str(exc).strip()
    if state in _RULE_ERRORS:
        return _RULE_ERRORS[state](message)
    if state == "WW425":
        return TooEarlyError(message, retry_after=float(diag.message_detail or 1))
    if state == "WWRNS":
        run_spec, world_spec = (int(v) for v in (diag.message_detail or "0 0").split())
        return RunNotSupportedError(run_spec, world_spec)
    if state in _BAD_INPUT:
        return ValidationError(f"{_BAD_INPUT[state]} ({message})", field="event_data")
    if isinstance(exc, pg.UniqueViolation):  # a backstop index (e.g. events_once_idx) held
        return EntityConflictError(f"conflicting write: {message}")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) or state[:2] in _UNAVAILABLE_CLASSES:
        return WorldUnavailableError(f"PostgreSQL is unavailable: {message}")
    return WorkflowWorldError(f"PostgreSQL error {state}: {message}")


@contextmanager
def translated() -> Iterator[None]:
    """Run a block of database calls; re-raise driver errors as SDK errors (the cause is kept)."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc) from exc
    except UnicodeEncodeError as exc:  # e.g. a lone surrogate in a str
        raise ValidationError(f"text cannot be encoded as UTF-8: {exc.reason}", field="event_data") from exc
