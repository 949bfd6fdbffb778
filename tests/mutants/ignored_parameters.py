"""Mutants that each ignore one read parameter: the MUST test pinning it must fail.

One generic in-memory World per ``(method, parameter)``: the method is called as if
the parameter had not been passed (a keyword dropped, a pagination field reset to
its default). Run scoping (``events.get``/``steps.get`` answering for any run), a
stream's ``start_index`` and ``list_streams_by_run_id`` need their own small
replacement. Identity keys (the id a ``get`` looks up) are pinned too, but a World
"ignoring" one cannot answer at all, so they have no mutant here.

A backend is ``tests.mutants.ignored_parameters:<name>``, ``name`` a key of :func:`mutants`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from typing import Any

from worlds_sdk.backend import WorldBackend, WorldConfig
from worlds_sdk.errors import EventNotFoundError
from worlds_sdk.events import strip_event
from worlds_sdk.models import Event, Pagination, ResolveData

from ..conformance.parameters import NOT_PINNED, read_parameters
from .memory_world import MemoryWorld, backend

IDENTITY_KEYS = frozenset(
    {
        ("runs.get", "run_id"),
        ("steps.get", "step_id"),
        ("steps.list", "run_id"),
        ("events.get", "event_id"),
        ("events.list", "run_id"),
        ("events.list_by_correlation_id", "correlation_id"),
        ("hooks.get", "hook_id"),
        ("hooks.get_by_token", "token"),
        ("read_from_stream", "name"),
        ("get_stream_chunks", "name"),
        ("get_stream_info", "name"),
    }
)


def _dropping(method: Callable[..., Awaitable[Any]], param: str) -> Callable[..., Awaitable[Any]]:
    """``method`` as if ``param`` had not been passed."""
    field = param.removeprefix("pagination.")

    async def call(*args: Any, **kwargs: Any) -> Any:
        if field == param:
            kwargs.pop(param, None)
        elif "pagination" in kwargs:
            kwargs["pagination"] = dataclasses.replace(kwargs["pagination"], **{field: getattr(Pagination(), field)})
        return await method(*args, **kwargs)

    return call


class _Replaced:
    """A storage group with one method replaced."""

    def __init__(self, inner: Any, name: str, replacement: Callable[..., Any]) -> None:
        self._inner, self._name, self._replacement = inner, name, replacement

    def __getattr__(self, attr: str) -> Any:
        return self._replacement if attr == self._name else getattr(self._inner, attr)


def _special(world: MemoryWorld, method: str, param: str) -> Callable[..., Any] | None:
    if (method, param) == ("steps.get", "run_id"):
        inner = world.steps.get
        return lambda run_id, step_id, **kwargs: inner(None, step_id, **kwargs)
    if (method, param) == ("events.get", "run_id"):

        async def any_run(run_id: str, event_id: str, *, resolve_data: ResolveData = "all") -> Event:
            for _, event in world.state.events:
                if event.event_id == event_id:
                    return strip_event(event, resolve_data)
            raise EventNotFoundError(event_id)

        return any_run
    if (method, param) == ("read_from_stream", "start_index"):
        inner_read = world.read_from_stream

        def from_start(name: str, start_index: int = 0) -> AsyncIterator[bytes]:
            return inner_read(name, 0)

        return from_start
    if (method, param) == ("list_streams_by_run_id", "run_id"):

        async def every_stream(run_id: str) -> list[str]:
            return list(world.state.streams)

        return every_stream
    return None


def ignoring(method: str, param: str) -> WorldBackend:
    group, _, name = method.rpartition(".")

    class IgnoresParameter(MemoryWorld):
        def __init__(self, config: WorldConfig) -> None:
            super().__init__(config)
            owner = getattr(self, group) if group else self
            replacement = _special(self, method, param) or _dropping(getattr(owner, name), param)
            if group:
                setattr(self, group, _Replaced(owner, name, replacement))
            else:
                setattr(self, name, replacement)

    IgnoresParameter.__doc__ = f"``{method}`` ignores its ``{param}`` parameter."
    return backend(IgnoresParameter, f"mutant-ignores-{method}-{param}")


def mutant_name(method: str, param: str) -> str:
    return f"ignores__{method.replace('.', '_')}__{param.replace('.', '_')}"


@cache
def mutants() -> dict[str, tuple[str, str]]:
    """Every read parameter but the identity keys and the exemptions, by mutant name (from the protocols)."""
    params = read_parameters() - IDENTITY_KEYS - NOT_PINNED.keys()
    return {mutant_name(method, param): (method, param) for method, param in sorted(params)}


def __getattr__(name: str) -> WorldBackend:
    if name not in mutants():
        raise AttributeError(name)
    return ignoring(*mutants()[name])
