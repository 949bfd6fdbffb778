"""Registers the local World with the ``worlds`` plugin system (entry point ``local``)."""

from __future__ import annotations

from typing import Any

from worlds_sdk import Capability, WorldBackend, hookimpl, temp_dir_sandbox

from .world import LocalWorld

SANDBOX_DEFAULTS: dict[str, Any] = {
    "lease_seconds": 2.0,
    "poll_interval": 0.05,
    "backoff_initial": 0.1,
    "backoff_max": 1.0,
    "shutdown_grace": 2.0,
}
"""Test instances use short leases and polls, so lease-expiry and redelivery tests take seconds."""


@hookimpl
def worlds_register() -> list[WorldBackend]:
    return [
        WorldBackend(
            id="local",
            factory=LocalWorld,
            sandbox=temp_dir_sandbox(SANDBOX_DEFAULTS),
            spec_versions=frozenset({LocalWorld.spec_version}),
            capabilities=frozenset(
                {
                    Capability.MULTI_PROCESS,
                    Capability.DURABLE_QUEUE,
                    Capability.DELAYED_DELIVERY,
                    Capability.LIVE_STREAMS,
                    Capability.CRASH_SAFE,
                    Capability.INSPECTION,
                }
            ),
            description="A directory-backed World on SQLite (WAL): zero-config, crash-safe, multi-process.",
            distribution="worlds-sdk",
        )
    ]
