"""Backends for the in-repo JS World (``wrapped_local.mjs``), for the bridge's tests.

``WRAPPED`` is upstream's world-local behind the wrapper; ``BROKEN`` is the same
World corrupting payloads, which the suite must fail on PL-1. Both run through
the real bridge: a Node process, the shim, the JSON-lines protocol.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reference_worlds.node.plugin import UNOBSERVABLE
from reference_worlds.node.runtime import install
from reference_worlds.node.world import NodeWorld
from worlds_sdk import WorldBackend
from worlds_sdk.backend import WorldConfig

HERE = Path(__file__).parent
LOCAL = ("@workflow/world-local", "4.4.1")


class _Sandbox:
    def __init__(self, break_mode: str) -> None:
        self.install_dir = install(*LOCAL)
        self.break_mode = break_mode

    @contextmanager
    def instance(self) -> Iterator[WorldConfig]:
        entry = self.install_dir / "node_modules" / LOCAL[0] / "dist" / "index.js"
        with tempfile.TemporaryDirectory(prefix="worlds-jsworld-") as directory:
            yield {
                "package": str(HERE / "wrapped_local.mjs"),
                "version": "0.0.0",
                "install_dir": str(self.install_dir),
                "cwd": directory,
                "env": {
                    "WORKFLOW_LOCAL_DATA_DIR": f"{directory}/data",
                    "WORLDS_TEST_LOCAL_ENTRY": str(entry),
                    "WORLDS_TEST_BREAK": self.break_mode,
                },
            }


def _backend(world_id: str, break_mode: str) -> WorldBackend:
    @contextmanager
    def sandbox(settings: WorldConfig) -> Iterator[_Sandbox]:
        yield _Sandbox(break_mode)

    return WorldBackend(
        id=world_id,
        factory=NodeWorld,
        sandbox=sandbox,
        spec_versions=frozenset({3}),
        capabilities=frozenset(),
        unobservable=UNOBSERVABLE,
        description="upstream's world-local behind an in-repo JS wrapper (tests/node/wrapped_local.mjs)",
    )


WRAPPED = _backend("wrapped-local", "")
BROKEN = _backend("broken-payloads", "payloads")
