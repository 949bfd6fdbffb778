"""The reference local World: a directory-backed World on SQLite. See ``docs/local-world.md``."""

from .config import LocalConfig
from .world import LocalWorld

__all__ = ["LocalConfig", "LocalWorld"]
