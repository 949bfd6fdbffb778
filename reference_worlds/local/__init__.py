"""The reference local World: a directory-backed World on SQLite. See ``docs/local-world.md``."""

from .config import LocalConfig
from .queue import DeadLetter
from .world import LocalWorld

__all__ = ["DeadLetter", "LocalConfig", "LocalWorld"]
