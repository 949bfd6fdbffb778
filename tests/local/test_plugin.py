"""The local World's plugin record and its test sandbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from reference_worlds.local import LocalWorld
from reference_worlds.local.plugin import worlds_register
from worlds_sdk import BatchStreamer, Capability, World


def test_the_backend_declares_what_the_local_world_really_has() -> None:
    (backend,) = worlds_register()
    assert backend.id == "local"
    assert backend.spec_versions == frozenset({3})
    assert backend.capabilities == {
        Capability.MULTI_PROCESS,
        Capability.DURABLE_QUEUE,
        Capability.DELAYED_DELIVERY,
        Capability.LIVE_STREAMS,
        Capability.CRASH_SAFE,
        Capability.INSPECTION,
    }
    assert Capability.EFFECTIVELY_ONCE_DELIVERY not in backend.capabilities, "at-least-once: duplicates can happen"


def test_each_sandbox_instance_is_a_fresh_directory_removed_afterwards(tmp_path: Path) -> None:
    (backend,) = worlds_register()
    with backend.sandbox({"path": str(tmp_path), "deployment_id": "dpl_test"}) as sandbox:
        with sandbox.instance() as first, sandbox.instance() as second:
            assert first["path"] != second["path"]
            assert json.loads(json.dumps(first)) == first, "the config must reach child processes as JSON"
            world = backend.factory(first)
            assert isinstance(world, World) and isinstance(world, BatchStreamer)
            assert asyncio.run(world.get_deployment_id()) == "dpl_test"
            asyncio.run(world.close())
            assert Path(first["path"]).is_dir() and Path(first["path"]).parent.parent == tmp_path
        assert not Path(first["path"]).exists() and not Path(second["path"]).exists()


def test_the_config_a_world_reports_reopens_the_same_world(tmp_path: Path) -> None:
    world = LocalWorld({"path": str(tmp_path / "w"), "lease_seconds": 3})
    reported = world.config.to_mapping()
    asyncio.run(world.close())
    again = LocalWorld(json.loads(json.dumps(reported)))
    assert (again.directory, again.config) == (world.directory, world.config)
    asyncio.run(again.close())
