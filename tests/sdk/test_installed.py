"""``worlds validate-manifest --installed``: each Python entry against the World its entryPoint resolves to here.

These use the environment's real plugins (``local`` and ``postgres`` from worlds-sdk).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from worlds_sdk.cli import main
from worlds_sdk.installed import check_installed
from worlds_sdk.manifest import Manifest, load_manifest, parse_manifest

REPO_MANIFEST = Path(__file__).parents[2] / "worlds-manifest.json"


def local_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(REPO_MANIFEST.read_text())["worlds"][0]
    return {**entry, **changes}


def problems(*entries: dict[str, Any]) -> list[str]:
    return [str(p) for p in check_installed(parse_manifest({"worlds": list(entries)})).problems]


def test_the_repository_manifest_matches_the_installed_worlds() -> None:
    check = check_installed(load_manifest(REPO_MANIFEST))
    assert check.problems == ()
    assert check.checked == ("local", "postgres")


def test_every_mismatch_is_named_at_its_field() -> None:
    entry = local_entry(capabilities=["durable_queue"], specVersions=[2, 3], pypi="worlds-other")
    assert problems(entry) == [
        "$.worlds[0].specVersions: the manifest lists spec versions [2, 3], the installed World 'local' declares [3]",
        "$.worlds[0].capabilities: the manifest lists capabilities [durable_queue], the installed World 'local' "
        "declares [crash_safe, delayed_delivery, durable_queue, inspection, live_streams, multi_process]",
        "$.worlds[0].pypi: World 'local' is installed from 'worlds-sdk', not 'worlds-other'",
    ]


def test_an_entry_point_that_is_not_installed_or_is_another_world_is_a_problem() -> None:
    missing = local_entry(id="ghost", entryPoint="ghost", package="worlds-ghost")
    other = local_entry(id="mine", entryPoint="postgres")
    assert problems(missing, other) == [
        "$.worlds[0].entryPoint: World 'ghost' is in the manifest but not installed: no 'ghost' plugin in the "
        "'worlds' entry-point group (pip install 'worlds-ghost')",
        "$.worlds[1].entryPoint: manifest entry 'mine' points at 'postgres', which is World 'postgres'",
    ]


def test_a_module_attr_entry_point_is_resolved_and_compared() -> None:
    entry = local_entry(
        id="memory",
        entryPoint="worlds_sdk.memory:memory",
        specVersions=[3],
        capabilities=["delayed_delivery", "inspection"],
    )
    assert problems(entry) == []


def test_npm_worlds_are_skipped_with_the_reason() -> None:
    local = load_manifest(REPO_MANIFEST).worlds[0]
    npm = dataclasses.replace(local, id="turso", pypi=None, entry_point=None)  # upstream's entries lack our fields

    check = check_installed(Manifest((npm, local)))

    assert check.problems == ()
    assert check.checked == ("local",)
    assert check.skipped == (("turso", "an npm World (no pypi or entryPoint): nothing to install with pip"),)


def test_the_command_prints_each_mismatch_and_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"worlds": [local_entry(specVersions=[2])]}))

    assert main(["validate-manifest", "--installed", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{path}: valid (1 Worlds: local)",
        "$.worlds[0].specVersions: the manifest lists spec versions [2], the installed World 'local' declares [3]",
    ]
    assert err == f"{path}: 1 mismatch with the installed Worlds\n"

    assert main(["validate-manifest", "--installed", str(REPO_MANIFEST)]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[-1] == f"{REPO_MANIFEST}: the installed Worlds match (local, postgres)"
