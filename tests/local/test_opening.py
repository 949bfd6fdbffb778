"""Opening a world directory: zero-config creation, and clear errors for paths that cannot work."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from conformance.builders import new_run
from reference_worlds.local import LocalWorld
from reference_worlds.local.database import DB_FILE, FORMAT_VERSION
from worlds_sdk.errors import IncompatibleFormatError, ValidationError, WorldUnavailableError

OPEN_AS_NOBODY = """
import os, sys
from reference_worlds.local import LocalWorld
from worlds_sdk.errors import WorkflowWorldError
if os.geteuid() == 0:  # root ignores permission bits: drop to nobody once everything is imported
    os.setgid(65534)
    os.setuid(65534)
try:
    LocalWorld({"path": sys.argv[1]})
except WorkflowWorldError as exc:
    print(type(exc).__name__, exc)
else:
    print("opened")
"""


def open_unprivileged(path: Path) -> str:
    done = subprocess.run([sys.executable, "-c", OPEN_AS_NOBODY, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def _close(world: LocalWorld) -> None:
    await world.close()


def test_missing_directory_is_created_and_reopened_with_its_data(config: dict[str, Any]) -> None:
    async def main() -> None:
        world = LocalWorld(config)
        run = await new_run(world)
        await world.close()
        again = LocalWorld(config)
        assert (await again.runs.get(run.run_id)) == run
        await again.close()

    asyncio.run(main())
    assert (Path(config["path"]) / DB_FILE).is_file()


def test_default_directory_comes_from_the_environment_then_dot_worlds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORLDS_LOCAL_DIR", raising=False)
    world = LocalWorld()
    assert world.directory == tmp_path / ".worlds"
    asyncio.run(_close(world))
    monkeypatch.setenv("WORLDS_LOCAL_DIR", str(tmp_path / "from-env"))
    world = LocalWorld({})
    assert world.directory == tmp_path / "from-env"
    assert world.config.to_mapping()["path"] == str(tmp_path / "from-env")
    asyncio.run(_close(world))


def test_a_file_instead_of_a_directory_is_refused_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "not-a-dir"
    path.write_text("x")
    with pytest.raises(WorldUnavailableError, match="not a directory") as caught:
        LocalWorld({"path": str(path)})
    assert str(path) in str(caught.value)


def test_a_missing_parent_is_an_error_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "world"
    with pytest.raises(WorldUnavailableError, match=r"parent directory .* does not exist") as caught:
        LocalWorld({"path": str(path)})
    assert str(path) in str(caught.value)
    assert not path.parent.exists()


def test_an_unwritable_directory_is_refused_naming_the_path() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        path = Path(tmp) / "read-only"
        path.mkdir(mode=0o555)
        assert open_unprivileged(path) == f"WorldUnavailableError local World path {path} is not writable"


def test_a_path_behind_an_unsearchable_directory_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700 if os.geteuid() == 0 else 0o000)  # root's 0700 locks out nobody
    try:
        answer = open_unprivileged(locked / "world")
    finally:
        locked.chmod(0o700)
    assert answer == f"WorldUnavailableError local World path {locked / 'world'} cannot be used: Permission denied"


def test_another_format_version_is_refused_with_both_versions_named(config: dict[str, Any]) -> None:
    asyncio.run(_close(LocalWorld(config)))
    with sqlite3.connect(Path(config["path"]) / DB_FILE) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'format_version'")
    with pytest.raises(IncompatibleFormatError) as caught:
        LocalWorld(config)
    assert "'999'" in str(caught.value)
    assert repr(FORMAT_VERSION) in str(caught.value)


def test_a_database_file_that_is_not_sqlite_is_refused(config: dict[str, Any]) -> None:
    path = Path(config["path"])
    path.mkdir()
    (path / DB_FILE).write_bytes(b"this is not a database, it is a text file" * 100)
    with pytest.raises(IncompatibleFormatError, match="not SQLite"):
        LocalWorld(config)


def test_another_programs_sqlite_database_is_refused(config: dict[str, Any]) -> None:
    path = Path(config["path"])
    path.mkdir()
    with sqlite3.connect(path / DB_FILE) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    with pytest.raises(IncompatibleFormatError, match="not a local World's"):
        LocalWorld(config)


@pytest.mark.parametrize(
    ("key", "value"),
    [("colour", "red"), ("lease_seconds", 0), ("lease_seconds", "30"), ("max_attempts", 2.5), ("deployment_id", "")],
)
def test_a_bad_config_is_a_validation_error(config: dict[str, Any], key: str, value: object) -> None:
    with pytest.raises(ValidationError):
        LocalWorld({**config, key: value})
    assert not Path(config["path"]).exists(), "nothing is created for a config that is refused"


def test_a_closed_world_refuses_every_call(config: dict[str, Any]) -> None:
    async def main() -> None:
        world = LocalWorld(config)
        await world.close()
        await world.close()  # closing twice is harmless
        with pytest.raises(WorldUnavailableError, match="closed"):
            await world.runs.list()
        with pytest.raises(WorldUnavailableError, match="closed"):
            await world.queue("__wkf_workflow_w", {})
        with pytest.raises(WorldUnavailableError, match="closed"):
            await world.start()
        with pytest.raises(WorldUnavailableError, match="closed"):
            world.read_from_stream("s")

    asyncio.run(main())
