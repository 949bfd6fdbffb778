"""The reference Postgres World: many processes on many hosts share one PostgreSQL schema.

See docs/postgres-world.md for the design, the SQL layout and the figures.
"""

from .config import PostgresConfig
from .migrations import migrate
from .world import PostgresWorld

__all__ = ["PostgresConfig", "PostgresWorld", "migrate"]
