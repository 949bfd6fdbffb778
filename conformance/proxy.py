"""A World seen through a wrapper that every async call passes through.

The harness (and each child process) wraps the World under test with it to give
each call a deadline (:mod:`conformance.deadlines`); the project's own tests wrap
Worlds with it to make them slow or make one call hang. One generic forwarder serves all of them,
so no wrapper has to list the World's methods, and a new method is covered by
every wrapper at once.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Around = Callable[[str, tuple[Any, ...], dict[str, Any], Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""``around(name, args, kwargs, call)``: runs ``call()`` (the World's coroutine) its own way.

``name`` is the method's dotted name as a test writes it (``events.create``, ``queue``).
"""

GROUPS = ("runs", "steps", "events", "hooks")
"""The storage groups (docs/spec.md §1): their methods are named ``<group>.<method>``."""


class CallProxy:
    """Forwards every attribute of ``inner``; coroutine methods go through ``around``.

    Plain attributes, synchronous methods (``register_handler``) and async
    iterators (``read_from_stream``) are forwarded as they are.
    """

    def __init__(self, inner: Any, around: Around, prefix: str = "") -> None:
        self._inner = inner
        self._around = around
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not self._prefix and name in GROUPS:
            return CallProxy(value, self._around, f"{name}.")
        if not inspect.iscoroutinefunction(value):
            return value
        dotted = f"{self._prefix}{name}"
        around = self._around

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await around(dotted, args, kwargs, lambda: value(*args, **kwargs))

        return call
