"""The typed errors a World raises.

The runtime matches on these names and on ``status`` (an HTTP-like code), so they
keep upstream's names. Each class's docstring is its default message. Read misses
are always a subclass of :class:`NotFoundError` -- upstream is inconsistent there,
and a runtime that retries on "not found" needs one type to catch.
"""

from __future__ import annotations

import math


class WorkflowWorldError(Exception):
    """The World could not perform the operation."""

    status: int = 500

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        self.retry_after = retry_after
        super().__init__(self.message)


class ValidationError(WorkflowWorldError):
    """The request is malformed."""

    status = 400

    def __init__(self, message: str | None = None, *, field: str = "") -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field and message else message)


class NotFoundError(WorkflowWorldError):
    """The entity does not exist."""

    status = 404


class WorkflowRunNotFoundError(NotFoundError):
    """The workflow run does not exist."""


class StepNotFoundError(NotFoundError):
    """The step does not exist in this run."""


class HookNotFoundError(NotFoundError):
    """No live hook has this id or token."""


class WaitNotFoundError(NotFoundError):
    """The wait does not exist in this run."""


class EventNotFoundError(NotFoundError):
    """The event does not exist in this run."""


class StreamNotFoundError(NotFoundError):
    """The stream does not exist."""


class EntityConflictError(WorkflowWorldError):
    """The entity is in a state that does not allow this transition."""

    status = 409


class RunExpiredError(WorkflowWorldError):
    """The workflow run has already reached a terminal state."""

    status = 410


class PreconditionFailedError(WorkflowWorldError):
    """A guard on the entity's state did not hold."""

    status = 412


class TooEarlyError(WorkflowWorldError):
    """The step may not start before its retry_after time."""

    status = 425

    def __init__(self, message: str | None = None, *, retry_after: float) -> None:
        super().__init__(message, retry_after=float(max(1, math.ceil(retry_after))))


class ThrottleError(WorkflowWorldError):
    """The World is overloaded; try again later."""

    status = 429


class RunNotSupportedError(WorkflowWorldError):
    """The run needs a newer World (its spec version is above this World's)."""

    status = 400

    def __init__(self, run_spec_version: int, world_spec_version: int) -> None:
        self.run_spec_version = run_spec_version
        self.world_spec_version = world_spec_version
        super().__init__(f"run has spec version {run_spec_version}, this World supports up to {world_spec_version}")


class WorldUnavailableError(WorkflowWorldError):
    """The World's backing service cannot be reached or is misconfigured."""

    status = 503


class IncompatibleFormatError(WorkflowWorldError):
    """The World's stored data was written by an incompatible format version."""

    status = 500
