"""The record a plugin returns to describe a World backend.

A backend is more than a factory: the conformance suite must know which spec
versions and capabilities it claims, how to reopen *the same* World from another
process (a JSON-serialisable config), and how to provision an isolated, empty
instance per test and tear it down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .capabilities import Capability
from .protocols import World

WorldConfig = Mapping[str, Any]
"""JSON-serialisable settings that open one particular World (a directory, a URL and schema, …)."""


class Sandbox(Protocol):
    """A provisioned test environment (a temp dir, a database server) for one backend."""

    def instance(self) -> AbstractContextManager[WorldConfig]:
        """Provision an isolated, empty World; yield its config; destroy it on exit."""
        ...


@dataclass(frozen=True, kw_only=True)
class WorldBackend:
    """A World implementation, as registered through the ``worlds_register`` hook.

    ``factory(config)`` builds a World (not yet started) from a config; calling it
    twice with one config, in one process or two, opens the same World.
    ``sandbox(settings)`` is a context manager that prepares what isolated test
    instances need (``settings`` come from ``--world-config``).
    """

    id: str
    factory: Callable[[WorldConfig], World]
    sandbox: Callable[[WorldConfig], AbstractContextManager[Sandbox]]
    spec_versions: frozenset[int]
    capabilities: frozenset[Capability]
    description: str = ""
    distribution: str | None = None
    default_config: Callable[[], WorldConfig] = field(default=dict)
    migrate: Callable[[WorldConfig], str] | None = None
    """Bring the World's storage at ``config`` up to date (``worlds migrate``); returns a one-line summary."""

    @property
    def max_spec_version(self) -> int:
        return max(self.spec_versions)


@contextmanager
def no_sandbox(settings: WorldConfig) -> Iterator[Sandbox]:
    """For worlds that need no shared environment: each instance is just ``settings``."""

    class _Fixed:
        @contextmanager
        def instance(self) -> Iterator[WorldConfig]:
            yield dict(settings)

    yield _Fixed()
