"""The record a plugin returns to describe a World backend.

A backend is more than a factory: the conformance suite must know which spec
versions and capabilities it claims, how to reopen *the same* World from another
process (a JSON-serialisable config), and how to provision an isolated, empty
instance per test and tear it down.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .capabilities import Capability, Observation
from .protocols import World

WorldConfig = Mapping[str, Any]
"""JSON-serialisable settings that open one particular World (a directory, a URL and schema, …)."""


class Sandbox(Protocol):
    """A provisioned test environment (a temp dir, a database server) for one backend."""

    def instance(self) -> AbstractContextManager[WorldConfig]:
        """Provision an isolated, empty World; yield its config; destroy it on exit."""
        ...


@dataclass(frozen=True, slots=True)
class Extra:
    """An optional extra of the World's distribution that the World needs: ``pip install 'dist[name]'``.

    A default install without the extra is not a broken install, so the plugin
    module must import without the extra's modules (import them where they are
    used): discovery then lists the World as not installed, with the command
    that installs it, instead of reporting a plugin that failed to load.
    """

    name: str
    modules: tuple[str, ...]
    """Top-level modules the extra installs, e.g. ``("psycopg", "psycopg_pool")``."""

    def missing(self) -> tuple[str, ...]:
        """The modules that cannot be imported here; found without importing them."""
        return tuple(module for module in self.modules if not _importable(module))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked import, or a module left half-imported
        return False


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
    unobservable: Mapping[Observation, str] = field(default_factory=dict)
    """What the suite cannot read off this backend's World, each with its reason (see :class:`Observation`)."""
    extra: Extra | None = None
    """The optional extra of ``distribution`` the World needs, if any (see :class:`Extra`)."""

    @property
    def max_spec_version(self) -> int:
        return max(self.spec_versions)


class TempDirSandbox:
    """Each instance is a fresh temporary directory, given to the World as config key ``path``.

    For Worlds that keep their data in files. ``settings`` override ``defaults``; a
    ``path`` in the settings is where the temporary directories are made.
    """

    def __init__(self, settings: WorldConfig, defaults: WorldConfig) -> None:
        self._settings = {**defaults, **settings}

    @contextmanager
    def instance(self) -> Iterator[WorldConfig]:
        parent = self._settings.get("path")
        with tempfile.TemporaryDirectory(prefix="worlds-", dir=parent, ignore_cleanup_errors=True) as tmp:
            yield {**self._settings, "path": str(Path(tmp) / "world")}


def temp_dir_sandbox(defaults: WorldConfig | None = None) -> Callable[[WorldConfig], AbstractContextManager[Sandbox]]:
    """A ``WorldBackend.sandbox`` for file-based Worlds: a fresh temporary directory per instance."""

    @contextmanager
    def sandbox(settings: WorldConfig) -> Iterator[Sandbox]:
        yield TempDirSandbox(settings, defaults or {})

    return sandbox
