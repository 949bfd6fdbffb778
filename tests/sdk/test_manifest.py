"""The manifest: schema plus semantic checks, every problem reported with its path, translation to upstream."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from worlds_sdk import Capability
from worlds_sdk.manifest import (
    PYTHON_FIELDS,
    ManifestError,
    from_upstream,
    load_manifest,
    manifest_to_dict,
    parse_manifest,
    to_upstream,
)
from worlds_sdk.validation import load_schema

REPO_MANIFEST = Path(__file__).parents[2] / "worlds-manifest.json"
UPSTREAM_MANIFEST = Path(__file__).parents[2] / "reference_worlds" / "node" / "upstream-worlds-manifest.json"
"""A verbatim copy of upstream's registry: ``worlds-manifest.json`` of github.com/vercel/workflow at
commit 08de1555e6bcdc4115bdca3a1130e9f6afb7dbb8 (16 Worlds). Never edit it; replace it with a newer copy.
It lives in the Node bridge's package data (the bridge provisions npm Worlds from its entries); this test
is what keeps it valid."""

UPSTREAM_POSTGRES: dict[str, Any] = {
    "id": "postgres",
    "type": "official",
    "package": "@workflow/world-postgres",
    "name": "Postgres",
    "description": "Self-hosted reference world using PostgreSQL.",
    "docs": "/worlds/postgres",
    "example": "https://github.com/vercel/workflow-examples/tree/main/postgres",
    "features": [],
    "env": {"WORKFLOW_TARGET_WORLD": "@workflow/world-postgres", "WORKFLOW_POSTGRES_URL": "postgres://w:w@localhost/w"},
    "services": [
        {
            "name": "postgres",
            "image": "postgres:18-alpine",
            "ports": ["5432:5432"],
            "env": {"POSTGRES_USER": "w", "POSTGRES_PASSWORD": "w", "POSTGRES_DB": "w"},
            "healthCheck": {"cmd": "pg_isready", "interval": "10s", "timeout": "5s", "retries": 5},
        }
    ],
    "setup": "./packages/world-postgres/bin/setup.js",
}
"""An entry as upstream's registry has it (shape copied from vercel/workflow's worlds-manifest.json)."""


def entry(world_id: str, **fields: Any) -> dict[str, Any]:
    """A valid community entry; ``fields`` override or add keys."""
    base = {
        "id": world_id,
        "type": "community",
        "package": f"worlds-{world_id}",
        "name": world_id.title(),
        "description": f"The {world_id} World.",
        "repository": f"https://example.org/{world_id}",
        "pypi": f"worlds-{world_id}",
        "entryPoint": world_id,
        "specVersions": [3],
        "capabilities": ["durable_queue"],
    }
    return base | fields


def service(**fields: Any) -> dict[str, Any]:
    base = {
        "name": "db",
        "image": "db:1",
        "ports": ["5432:5432"],
        "healthCheck": {"cmd": "db-ready", "interval": "10s", "timeout": "5s", "retries": 5},
    }
    return base | fields


def problems_of(data: object) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data)
    return [str(problem) for problem in caught.value.problems]


def test_repo_manifest_is_valid_and_lists_the_reference_worlds() -> None:
    manifest = load_manifest(REPO_MANIFEST)

    assert manifest.ids == ("local", "postgres")
    local, postgres = manifest.worlds
    assert (local.type, local.package, local.entry_point, local.services) == ("official", "worlds-sdk", "local", ())
    expected = {"multi_process", "durable_queue", "delayed_delivery", "live_streams", "crash_safe", "inspection"}
    assert local.capabilities == postgres.capabilities == {Capability(name) for name in expected}
    assert postgres.entry_point == "postgres"
    assert "WORLDS_POSTGRES_URL" in postgres.env
    (db,) = postgres.services
    assert (db.name, db.image, db.ports) == ("postgres", "postgres:15", ("5432:5432",))
    assert "POSTGRES_PASSWORD" in db.env
    assert db.health_check is not None and db.health_check.cmd.startswith("pg_isready")


def test_repo_manifest_passes_the_published_schema_alone() -> None:
    """CI in another language can validate with the schema file; only the semantic checks are Python's."""
    schema = load_schema("manifest")
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(json.loads(REPO_MANIFEST.read_text()))


def test_four_different_problems_in_one_manifest_are_all_reported_with_their_paths() -> None:
    no_id = entry("nameless")
    del no_id["id"]
    data = {
        "worlds": [
            no_id,
            entry("twin"),
            entry("twin"),
            entry("dreamer", capabilities=["durable_queue", "teleportation"]),
            entry("sick", services=[service(healthCheck={"interval": "10s"})]),
        ]
    }

    assert problems_of(data) == [
        "$.worlds[0].id: required field is missing",
        "$.worlds[2].id: duplicate id 'twin' (first used at $.worlds[1])",
        "$.worlds[3].capabilities[1]: unknown capability 'teleportation'; known: "
        + ", ".join(sorted(c.value for c in Capability)),
        "$.worlds[4].services[0].healthCheck.cmd: required field is missing",
    ]


@pytest.mark.parametrize(
    ("health_check", "expected"),
    [
        ({"interval": "10s"}, "$.worlds[0].services[0].healthCheck.cmd: required field is missing"),
        ({"cmd": ""}, "$.worlds[0].services[0].healthCheck.cmd: '' should be non-empty"),
        ({"cmd": "ok", "retries": 0}, "$.worlds[0].services[0].healthCheck.retries: 0 is less than the minimum of 1"),
        ({"cmd": "ok", "interval": "soon"}, "$.worlds[0].services[0].healthCheck.interval: 'soon' does not match"),
        ({"cmd": "ok", "timeout": "0s"}, "$.worlds[0].services[0].healthCheck.timeout: timeout must be longer than"),
    ],
)
def test_a_bad_health_check_is_named_by_its_field(health_check: dict[str, Any], expected: str) -> None:
    (problem,) = problems_of({"worlds": [entry("db", services=[service(healthCheck=health_check)])]})
    assert problem.startswith(expected)


def test_compound_durations_are_accepted() -> None:
    check = {"cmd": "ok", "interval": "1m30s", "timeout": "500ms", "retries": 3}
    manifest = parse_manifest({"worlds": [entry("db", services=[service(healthCheck=check)])]})
    assert manifest.worlds[0].services[0].health_check is not None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"repository": None}, "$.worlds[0].repository: required field is missing"),
        ({"requiresCredentials": True}, "$.worlds[0].credentialsNote: required field is missing"),
        ({"specVersions": []}, "$.worlds[0].specVersions: [] should be non-empty"),
        ({"entryPoint": "a:b:c"}, "$.worlds[0].entryPoint: 'a:b:c' does not match"),
        ({"entryPoint": None}, "$.worlds[0].entryPoint: required field is missing (a Python World has pypi"),
        ({"pypi": None}, "$.worlds[0].pypi: required field is missing (a Python World has pypi"),
        ({"capabilities": None}, "$.worlds[0].capabilities: required field is missing (a Python World"),
        ({"type": "unofficial"}, "$.worlds[0].type: 'unofficial' is not one of"),
        ({"env": {"NOT-A-NAME": "x"}}, "$.worlds[0].env: 'NOT-A-NAME' does not match"),
        ({"services": [service(), service()]}, "$.worlds[0].services[1].name: duplicate service name 'db'"),
        ({"services": [service(ports=["70000:5432"])]}, "$.worlds[0].services[0].ports[0]: port number out of range"),
    ],
)
def test_entry_problems_are_reported_at_the_field(change: dict[str, Any], expected: str) -> None:
    raw = {key: value for key, value in (entry("x") | change).items() if value is not None}
    (problem,) = problems_of({"worlds": [raw]})
    assert problem.startswith(expected)


def test_not_a_manifest_at_all() -> None:
    assert problems_of([]) == ["$: [] is not of type 'object'"]
    assert problems_of({}) == ["$.worlds: required field is missing"]


def test_manifest_error_is_a_value_error_carrying_every_problem() -> None:
    with pytest.raises(ValueError, match="2 problems") as caught:
        parse_manifest({"worlds": [entry("a", capabilities=["x"]), entry("a")]})
    assert isinstance(caught.value, ManifestError)
    assert [p.location for p in caught.value.problems] == [("worlds", 0, "capabilities", 0), ("worlds", 1, "id")]


def test_invalid_json_is_one_problem_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "worlds-manifest.json"
    path.write_text('{"worlds": [\n  {"id": "x",}\n]}')

    with pytest.raises(ManifestError) as caught:
        load_manifest(path)

    assert caught.value.source == str(path)
    assert [str(p) for p in caught.value.problems] == [
        "$: not valid JSON: Expecting property name enclosed in double quotes at line 2 column 14"
    ]


def test_missing_file_is_an_os_error_not_a_manifest_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_manifest(tmp_path / "absent.json")


def test_an_upstream_entry_translates_in_and_back_out_unchanged() -> None:
    ours = from_upstream(
        UPSTREAM_POSTGRES,
        pypi="worlds-postgres",
        entry_point="postgres",
        spec_versions=[3],
        capabilities=["crash_safe"],
    )

    assert ours.entry_point == "postgres"
    assert ours.services[0].health_check is not None and ours.services[0].health_check.retries == 5
    assert to_upstream(ours) == UPSTREAM_POSTGRES


def test_our_entries_translate_to_upstream_and_back() -> None:
    for ours in load_manifest(REPO_MANIFEST).worlds:
        upstream = to_upstream(ours)
        assert not set(PYTHON_FIELDS) & set(upstream)
        back = from_upstream(
            upstream,
            pypi=ours.pypi,
            entry_point=ours.entry_point,
            spec_versions=sorted(ours.spec_versions),
            capabilities=sorted(ours.capabilities),
        )
        assert back == ours


def test_writing_a_manifest_back_reads_the_same() -> None:
    manifest = load_manifest(REPO_MANIFEST)
    assert parse_manifest(copy.deepcopy(manifest_to_dict(manifest))) == manifest


def test_upstreams_own_manifest_is_valid_unchanged() -> None:
    manifest = load_manifest(UPSTREAM_MANIFEST)

    assert len(manifest.worlds) == 16
    assert {entry.runtime for entry in manifest.worlds} == {"node"}
    assert manifest.get("platformatic") is not None and manifest.get("platformatic").version == "0.8.1"  # type: ignore[union-attr]
    (surreal,) = manifest.get("surrealdb").services  # type: ignore[union-attr]
    assert surreal.args[0] == "start"


def test_upstreams_manifest_writes_back_as_it_was_read() -> None:
    raw = json.loads(UPSTREAM_MANIFEST.read_text(encoding="utf-8"))
    written = manifest_to_dict(load_manifest(UPSTREAM_MANIFEST))
    # Upstream leaves some keys out where we write empty defaults (env, services, features).
    for ours, theirs in zip(written["worlds"], raw["worlds"], strict=True):
        assert {key: value for key, value in ours.items() if key in theirs} == theirs


def test_unknown_fields_are_kept_at_every_level_and_written_back() -> None:
    data = {
        "worlds": [
            entry("x", colour="blue", services=[service(weight=3, healthCheck={"cmd": "ok", "startPeriod": "5s"})])
        ],
        "generatedBy": "a tool",
    }
    manifest = parse_manifest(copy.deepcopy(data))

    (x,) = manifest.worlds
    assert x.extra == {"colour": "blue"}
    assert x.services[0].extra == {"weight": 3}
    assert x.services[0].health_check is not None and x.services[0].health_check.extra == {"startPeriod": "5s"}
    written = manifest_to_dict(manifest)
    assert written["generatedBy"] == "a tool"
    assert written["worlds"][0]["colour"] == "blue"
    assert written["worlds"][0]["services"][0]["healthCheck"]["startPeriod"] == "5s"
    assert parse_manifest(written) == manifest


def test_an_entry_without_python_fields_is_an_npm_world() -> None:
    ours = from_upstream(UPSTREAM_POSTGRES)

    assert (ours.runtime, ours.pypi, ours.entry_point) == ("node", None, None)
    assert (ours.spec_versions, ours.capabilities) == (frozenset(), frozenset())
    assert to_upstream(ours) == UPSTREAM_POSTGRES


def test_a_python_world_is_one_with_pypi_and_entry_point() -> None:
    manifest = load_manifest(REPO_MANIFEST)
    assert {entry.runtime for entry in manifest.worlds} == {"python"}
