"""Worlds that hang, for measuring the time to a verdict (docs/conformance.md, "Time to a verdict").

The local World, wrapped: one whose ``events.create`` never returns for
``step_completed`` and ``wait_completed``, and one whose queue accepts messages
but never delivers them. Neither breaks a rule in a way a test could see quickly;
they show that every test still ends, failed or passed, in bounded time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from conformance.proxy import CallProxy
from reference_worlds.local.plugin import worlds_register as local_backends
from reference_worlds.local.world import LocalWorld
from worlds_sdk.backend import WorldBackend, WorldConfig
from worlds_sdk.consumer import Delivery, MessageStore

HANGING_EVENTS = frozenset({"step_completed", "wait_completed"})


async def _hang_on_completion(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], call: Any) -> Any:
    if name == "events.create" and any(getattr(a, "event_type", None) in HANGING_EVENTS for a in args):
        await asyncio.Event().wait()  # never set: the call never returns
    return await call()


def _hangs_on_completion(config: WorldConfig | None = None) -> Any:
    return CallProxy(LocalWorld(config), _hang_on_completion)


class _NeverHandsOut:
    """A message store that keeps every message and hands none out."""

    def __init__(self, inner: MessageStore) -> None:
        self._inner = inner

    async def claim(self, prefixes: Sequence[str], lease_seconds: float, limit: int) -> Sequence[Delivery]:
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class NeverDelivers(LocalWorld):
    """Accepts every message and never delivers one."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        super().__init__(config)
        self._consumer.store = _NeverHandsOut(self._consumer.store)  # type: ignore[assignment]
        self._consumer.hand_off = False  # nor handed off at enqueue (a claim made by the insert)


def _local(factory: Any, name: str) -> WorldBackend:
    (local,) = local_backends()
    return dataclasses.replace(local, id=name, factory=factory)


hangs_on_completion = _local(_hangs_on_completion, "hung-events-create")
never_delivers = _local(NeverDelivers, "hung-queue")
