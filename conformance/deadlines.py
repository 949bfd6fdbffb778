"""Per-call deadlines: a World that hangs gets its verdict in minutes, not hours.

Without them a call that never returns is noticed only when the test body's
timeout (two minutes) runs out, in every test that makes it: a World whose
``events.create`` hung for ``step_completed`` took over 50 minutes to reach 79%
of the suite. Every call the suite makes on the World under test passes through
:class:`Deadlines`: it fails after ``CALL_DEADLINE`` seconds, naming the call, and
once a call has hung in this run the same call fails at once, with the reason,
in every later test that depends on it. Nothing is timed for speed: the deadline
is far above any call of a working World (``worlds bench`` measures latency);
only a stuck call reaches it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .proxy import CallProxy

CALL_DEADLINE = 20.0
"""Seconds one call may take; a body may run two minutes (harness.BODY_TIMEOUT)."""

OWN_TIMEOUT = frozenset({"close"})
"""Calls the harness already bounds itself (closing has ``CLOSE_TIMEOUT``)."""


class CallDeadlineExceeded(AssertionError):
    """A call on the World did not return within its deadline: the World hung."""


class WorldHung(BaseException):
    """The World hung earlier in this run in the same way: this test fails now, without waiting again.

    A ``BaseException``, so hypothesis does not replay and shrink the example (every
    replay would meet the same hang) and no test's ``except Exception`` hides it.
    """


class Deadlines:
    """The deadlines of one run: which calls have hung is shared by every test of the session.

    A call is known by its method and, for ``events.create``, the event type, so
    a World that hangs on ``step_completed`` fails every later ``step_completed``
    at once with :class:`WorldHung` (without calling it) while its other events
    still get the whole deadline.
    """

    def __init__(self, deadline: float = CALL_DEADLINE) -> None:
        self.deadline = deadline
        self.hung: dict[str, str] = {}
        """Call -> how it first hung."""

    def wrap(self, world: Any) -> Any:
        """``world`` with a deadline on every async call."""
        return CallProxy(world, self._around)

    async def _around(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], call: Callable[[], Awaitable[Any]]
    ) -> Any:
        if name in OWN_TIMEOUT:
            return await call()
        key = f"{name}{_event_type(args)}"
        if key in self.hung:
            # from None: a caller's exception being handled is not the cause, and would be reported first
            raise WorldHung(f"the World hung earlier in this run: {self.hung[key]}; not called again") from None
        try:
            return await asyncio.wait_for(call(), self.deadline)
        except TimeoutError:
            self.hung[key] = f"{key} did not return within {self.deadline:g} s"
            raise CallDeadlineExceeded(f"the World hung: {self.hung[key]}") from None


def _event_type(args: tuple[Any, ...]) -> str:
    """The request's event type, when there is one: which ``events.create`` hung matters."""
    kind = next((getattr(a, "event_type", None) for a in args if hasattr(a, "event_type")), None)
    return f"({kind})" if kind else ""
