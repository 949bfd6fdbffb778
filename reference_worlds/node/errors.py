"""What can go wrong in the bridge, kept apart from what the World answers.

Two families, on purpose. :class:`BridgeError` and its subclasses are about the
machinery (no ``node``, a failed ``npm install``, the Node process gone): the
suite treats them as "could not run", never as the World breaking a rule.
:class:`JSWorldError` is a JavaScript exception the contract does not name,
thrown by the World itself: it is *not* a ``WorkflowWorldError``, so a crash
inside the World can never pass for a contract answer such as "not found".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from worlds_sdk import errors


class BridgeError(RuntimeError):
    """The Node bridge could not do its part; the World was not judged."""


class NodeNotFoundError(BridgeError):
    """``node`` (or ``npm``) is not on PATH, so no npm World can run here."""


class NpmInstallError(BridgeError):
    """Installing the npm package into the bridge's cache failed."""


class NodeProcessError(BridgeError):
    """The Node process died or broke the protocol; the message ends with its stderr."""


class JSWorldError(Exception):
    """The World threw a JavaScript exception the contract does not name; carries its name and stack."""

    def __init__(self, name: str, message: str, js_stack: str | None, stderr_tail: str = "") -> None:
        self.js_name = name
        self.js_message = message
        self.js_stack = js_stack
        text = f"{name}: {message}"
        if js_stack:
            text += f"\nJS stack:\n{js_stack}"
        if stderr_tail:
            text += f"\nnode stderr (last lines):\n{stderr_tail}"
        super().__init__(text)


NotFound = type[errors.NotFoundError]

_BY_NAME: Mapping[str, type[errors.WorkflowWorldError]] = {
    "WorkflowRunNotFoundError": errors.WorkflowRunNotFoundError,
    "HookNotFoundError": errors.HookNotFoundError,
    "EntityConflictError": errors.EntityConflictError,
    "HookConflictError": errors.EntityConflictError,
    "RunExpiredError": errors.RunExpiredError,
    "PreconditionFailedError": errors.PreconditionFailedError,
    "ThrottleError": errors.ThrottleError,
}
"""Upstream's error classes (``@workflow/errors``) by ``name``, as the runtime matches them."""

_BASE_NAMES = frozenset({"WorkflowWorldError", "WorkflowAPIError"})
"""Upstream's base class of World errors (``WorkflowAPIError`` before 4.x): ours is ``WorkflowWorldError``."""

_BY_STATUS: Mapping[int, type[errors.WorkflowWorldError]] = {
    400: errors.ValidationError,
    409: errors.EntityConflictError,
    410: errors.RunExpiredError,
    412: errors.PreconditionFailedError,
    429: errors.ThrottleError,
    503: errors.WorldUnavailableError,
}
"""A ``WorkflowWorldError`` (or any error with an HTTP ``status``) by status, when its name says nothing more."""


def translate(error: Mapping[str, Any], not_found: NotFound, stderr_tail: Callable[[], str]) -> Exception:
    """Our typed error for an error the shim reported (``name``, ``message``, ``status``, ``retryAfter``, ``stack``).

    A 404 becomes ``not_found``: upstream reports read misses as a plain
    ``WorkflowWorldError`` with status 404, and which entity was missing is
    known only from the method called.
    """
    name = str(error.get("name") or "Error")
    message = str(error.get("message") or "")
    status = error.get("status")
    retry_after = error.get("retryAfter")
    if name == "TooEarlyError" or status == 425:
        return errors.TooEarlyError(
            message, retry_after=float(retry_after) if isinstance(retry_after, (int, float)) else 1.0
        )
    if name == "RunNotSupportedError":
        return errors.RunNotSupportedError(
            int(error.get("runSpecVersion") or 0), int(error.get("worldSpecVersion") or 0)
        )
    cls = _BY_NAME.get(name)
    if cls is None and isinstance(status, int):
        cls = not_found if status == 404 else _BY_STATUS.get(status)
    if cls is None and name in _BASE_NAMES:
        cls = errors.WorkflowWorldError  # the contract's base error: a typed answer that says no more
    if cls is None:
        return JSWorldError(name, message, error.get("stack"), stderr_tail())
    translated = cls(message)
    if isinstance(retry_after, (int, float)) and math.isfinite(retry_after):
        translated.retry_after = float(retry_after)
    return translated
