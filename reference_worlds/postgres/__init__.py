"""The reference Postgres World: many processes on many hosts share one PostgreSQL schema.

See docs/postgres-world.md for the design, the SQL layout and the figures. The
public names are loaded on first use: psycopg is an optional extra, and the
plugin module (``reference_worlds.postgres.plugin``) must import without it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import PostgresConfig
    from .migrations import migrate
    from .world import PostgresWorld

__all__ = ["PostgresConfig", "PostgresWorld", "migrate"]

_HOMES = {"PostgresConfig": ".config", "PostgresWorld": ".world", "migrate": ".migrations"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name], __name__), name)
