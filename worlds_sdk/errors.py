"""The typed errors a World raises.

The runtime matches on these names and on ``status`` (an HTTP-like code), so they
keep upstream's names. Each class's default message is its ``default_message``
attribute, not its docstring, which ``python -OO`` strips. Errors cross
processes (multiprocessing, RPC), so every one pickles with all its fields,
whatever its constructor takes (:meth:`WorkflowWorldError.__reduce__`). Read misses
are always a subclass of :class:`NotFoundError` -- upstream is inconsistent there,
and a runtime that retries on "not found" needs one type to catch.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class WorkflowWorldError(Exception):
    """Base of every error a World raises: the runtime matches on the class and on ``status``."""

    status: int = 500
    default_message: ClassVar[str] = "The World could not perform the operation."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        self.message = message or self.default_message
        self.retry_after = retry_after
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Rebuild from ``args`` and the instance fields, without calling ``__init__``.

        Exception's own pickling calls ``cls(*args)``, which breaks for every
        constructor that takes other arguments than the message (``TooEarlyError``,
        ``RunNotSupportedError``) and loses fields that are not arguments.
        """
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls: type[WorkflowWorldError], args: tuple[Any, ...], state: dict[str, Any]) -> WorkflowWorldError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ValidationError(WorkflowWorldError):
    """Raised before any state is read; ``field`` names the offending field as a dotted path."""

    status = 400
    default_message = "The request is malformed."

    def __init__(self, message: str | None = None, *, field: str = "") -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field and message else message)


class NotFoundError(WorkflowWorldError):
    """Every miss, on a read or on a write: one type for a runtime that retries on "not found"."""

    status = 404
    default_message = "The entity does not exist."


class WorkflowRunNotFoundError(NotFoundError):
    """A run id that names no run (EV-2)."""

    default_message = "The workflow run does not exist."


class StepNotFoundError(NotFoundError):
    """A step id that names no step of the run (EV-8)."""

    default_message = "The step does not exist in this run."


class HookNotFoundError(NotFoundError):
    """A hook id or token that names no live hook (HK-4)."""

    default_message = "No live hook has this id or token."


class WaitNotFoundError(NotFoundError):
    """A wait id that names no wait of the run (EV-9)."""

    default_message = "The wait does not exist in this run."


class EventNotFoundError(NotFoundError):
    """An event id that names no event of the run (ER-1)."""

    default_message = "The event does not exist in this run."


class StreamNotFoundError(NotFoundError):
    """A stream name that names no stream."""

    default_message = "The stream does not exist."


class EntityConflictError(WorkflowWorldError):
    """An illegal transition or a duplicate creation (409)."""

    status = 409
    default_message = "The entity is in a state that does not allow this transition."


class RunExpiredError(WorkflowWorldError):
    """The run already ended, so the request can no longer apply (EV-5, EV-8)."""

    status = 410
    default_message = "The workflow run has already reached a terminal state."


class PreconditionFailedError(WorkflowWorldError):
    """An optional guard on the entity's state failed (412)."""

    status = 412
    default_message = "A guard on the entity's state did not hold."


class TooEarlyError(WorkflowWorldError):
    """``step_started`` before the step's ``retry_after``; ``retry_after`` is the whole seconds to wait."""

    status = 425
    default_message = "The step may not start before its retry_after time."

    def __init__(self, message: str | None = None, *, retry_after: float) -> None:
        super().__init__(message, retry_after=float(max(1, math.ceil(retry_after))))


class ThrottleError(WorkflowWorldError):
    """The World sheds load; the caller should retry after ``retry_after`` seconds if given."""

    status = 429
    default_message = "The World is overloaded; try again later."


class RunNotSupportedError(WorkflowWorldError):
    """EV-10: the run's spec version is above the World's; the request itself is fine."""

    status = 400
    default_message = "The run needs a newer World (its spec version is above this World's)."

    def __init__(self, run_spec_version: int, world_spec_version: int) -> None:
        self.run_spec_version = run_spec_version
        self.world_spec_version = world_spec_version
        super().__init__(f"run has spec version {run_spec_version}, this World supports up to {world_spec_version}")


class WorldUnavailableError(WorkflowWorldError):
    """The World cannot serve: its service is unreachable or misconfigured, or the World is closed."""

    status = 503
    default_message = "The World's backing service cannot be reached or is misconfigured."


class IncompatibleFormatError(WorkflowWorldError):
    """Stored data of another format version: refusing beats misreading it."""

    status = 500
    default_message = "The World's stored data was written by an incompatible format version."
