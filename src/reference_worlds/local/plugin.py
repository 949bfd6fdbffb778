"""Registers the local World with the ``worlds`` plugin system (entry point ``local``)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from worlds_sdk import Capability, WorldBackend, WorldConfig, hookimpl

from .world import LocalWorld

SANDBOX_DEFAULTS: dict[str, Any] = {
    "lease_seconds": 2.0,
    "poll_interval": 0.05,
    "backoff_initial": 0.1,
    "backoff_max": 1.0,
    "shutdown_grace": 2.0,
}
"""Test instances use short leases and polls, so lease-expiry and redelivery tests take seconds."""


class TempDirSandbox:
    """Each instance is a fresh world directory in a temporary directory, removed afterwards.

    ``settings`` (from ``--world-config``) override :data:`SANDBOX_DEFAULTS`; a
    ``path`` in them is where the temporary directories are made.
    """

    def __init__(self, settings: WorldConfig) -> None:
        self._settings = dict(settings)

    @contextmanager
    def instance(self) -> Iterator[WorldConfig]:
        parent = self._settings.get("path")
        with tempfile.TemporaryDirectory(prefix="worlds-local-", dir=parent, ignore_cleanup_errors=True) as tmp:
            yield {**SANDBOX_DEFAULTS, **self._settings, "path": str(Path(tmp) / "world")}


@contextmanager
def temp_dir_sandbox(settings: WorldConfig) -> Iterator[TempDirSandbox]:
    yield TempDirSandbox(settings)


@hookimpl
def worlds_register() -> list[WorldBackend]:
    return [
        WorldBackend(
            id="local",
            factory=LocalWorld,
            sandbox=temp_dir_sandbox,
            spec_versions=frozenset({LocalWorld.spec_version}),
            capabilities=frozenset(
                {
                    Capability.MULTI_PROCESS,
                    Capability.DURABLE_QUEUE,
                    Capability.DELAYED_DELIVERY,
                    Capability.LIVE_STREAMS,
                    Capability.CRASH_SAFE,
                }
            ),
            description="A directory-backed World on SQLite (WAL): zero-config, crash-safe, multi-process.",
            distribution="worlds-sdk",
        )
    ]
