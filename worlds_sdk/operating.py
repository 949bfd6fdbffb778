"""What the operator commands (``inspect``, ``doctor``, ``gc``, ``dead-letters`` …) share: the real World, durations.

An operator command opens the World named by a reference and config exactly as
its clients do -- the user's directory or database, never a sandbox -- and does
not ``start()`` it: inspecting must not consume messages or re-enqueue runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from .backend import WorldBackend, WorldConfig
from .columns import aligned
from .errors import ValidationError
from .inspection import DeadLetter
from .models import Page, Pagination
from .protocols import InspectableWorld, World

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
PAGE = Pagination(limit=1000)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``: one number and one unit, so a typo cannot mean something else."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValidationError(f"expected a duration like 30d, 12h, 15m or 90s, got {text!r}", field="duration")
    return timedelta(**{_UNITS[m[2]]: float(m[1])})


@asynccontextmanager
async def opened(backend: WorldBackend, config: WorldConfig | None) -> AsyncIterator[World]:
    """The World at ``config`` (the backend's default config when ``None``), closed on exit; never started."""
    world = backend.factory(config if config is not None else backend.default_config())
    try:
        yield world
    finally:
        await world.close()


def inspectable(backend: WorldBackend, world: World) -> InspectableWorld:
    """The World's inspection surface, or a one-line error naming the missing capability."""
    if not isinstance(world, InspectableWorld):
        raise ValidationError(f"world {backend.id!r} does not implement the inspection surface", field="WORLD")
    return world


async def every(first: Any, fetch: Any) -> list[Any]:
    """All items of a paged list: ``fetch(pagination)`` returns a :class:`Page`, starting from page ``first``."""
    page: Page[Any] = first
    items = list(page.data)
    while page.has_more:
        page = await fetch(Pagination(limit=PAGE.limit, cursor=page.cursor))
        items.extend(page.data)
    return items


def render_dead_letters(letters: Sequence[DeadLetter]) -> str:
    """One line per dead letter: what an operator needs to decide between ``requeue`` and leaving it."""
    if not letters:
        return "no dead letters"
    rows = [("message", "queue", "attempt", "failures", "dead at", "error")]
    rows += [
        (d.message_id, d.queue_name, str(d.attempt), str(d.failures), d.dead_at.isoformat(timespec="seconds"), d.error)
        for d in letters
    ]
    return "\n".join(aligned(rows))
