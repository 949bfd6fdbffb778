"""`worlds ci matrix`: the GitHub Actions matrix, checked against its manifest and the documented workflow."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from worlds_sdk.ci import ci_matrix, untestable
from worlds_sdk.cli import main
from worlds_sdk.manifest import Manifest, load_manifest, parse_manifest

ROOT = Path(__file__).parents[2]
REPO_MANIFEST = ROOT / "worlds-manifest.json"
WORKFLOW = ROOT / "docs" / "examples" / "conformance.yml"


def matrix_from_cli(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[dict[str, Any], str]:
    assert main(["ci", "matrix", str(path)]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


def test_every_world_of_the_repository_manifest_is_in_the_matrix_as_the_manifest_describes_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    matrix, err = matrix_from_cli(capsys, REPO_MANIFEST)
    raw = json.loads(REPO_MANIFEST.read_text())["worlds"]

    assert list(matrix) == ["include"]  # any other key would become a matrix dimension
    assert [row["world"] for row in matrix["include"]] == [entry["id"] for entry in raw]
    assert err == ""
    for row, entry in zip(matrix["include"], raw, strict=True):
        assert set(row) == {"world", "name", "package", "env", "services", "setup"}
        assert (row["name"], row["package"], row["env"], row["setup"]) == (
            entry["name"],
            entry["package"],
            entry.get("env", {}),
            entry.get("setup", ""),
        )
        assert [{k: v for k, v in s.items() if k != "start"} for s in row["services"]] == entry["services"]
        for service, declared in zip(row["services"], entry["services"], strict=True):
            assert_starts(service["start"], declared)


def assert_starts(start: str, service: dict[str, Any]) -> None:
    """``start`` is a ``docker run`` of the image, named, with every port, env var and health option."""
    argv = shlex.split(start)
    assert argv[:5] == ["docker", "run", "--detach", "--name", service["name"]]
    assert argv[len(argv) - 1 - len(service.get("args", []))] == service["image"]
    options = list(zip(argv[5::2], argv[6::2], strict=False))
    assert [v for k, v in options if k == "--publish"] == service["ports"]
    assert [v for k, v in options if k == "--env"] == [f"{k}={v}" for k, v in service.get("env", {}).items()]
    check = service["healthCheck"]
    health = {k.removeprefix("--health-"): v for k, v in options if k.startswith("--health-")}
    assert health == {key: str(value) for key, value in check.items()}


def test_worlds_ci_cannot_test_are_left_out_with_the_reason(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    raw = json.loads(REPO_MANIFEST.read_text())
    local, postgres = raw["worlds"]
    secret = {**local, "id": "cloud", "requiresCredentials": True, "credentialsNote": "an API token from the console"}
    deployed = {**local, "id": "edge", "requiresDeployment": True}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"worlds": [secret, postgres, deployed]}))

    matrix, err = matrix_from_cli(capsys, path)

    assert [row["world"] for row in matrix["include"]] == ["postgres"]
    assert err.splitlines() == [
        "worlds: cloud: left out of the matrix: needs credentials CI does not have (an API token from the console)",
        "worlds: edge: left out of the matrix: runs only when deployed, not in a local test run",
    ]


def test_an_npm_world_without_python_fields_is_left_out() -> None:
    entry = load_manifest(REPO_MANIFEST).worlds[0]
    npm = dataclasses.replace(entry, id="turso", pypi=None, entry_point=None)  # as upstream lists its Worlds

    matrix = ci_matrix(Manifest((npm, entry)))

    assert [row["world"] for row in matrix.include] == [entry.id]
    assert matrix.excluded == (("turso", "an npm World (no pypi or entryPoint): nothing to install with pip"),)
    assert untestable(entry) is None


def test_a_service_without_a_health_check_starts_without_health_options() -> None:
    raw = json.loads(REPO_MANIFEST.read_text())["worlds"][1]
    raw["services"] = [{"name": "cache", "image": "redis:7", "ports": ["6379:6379"], "args": ["--save", ""]}]
    (row,) = ci_matrix(parse_manifest({"worlds": [raw]})).include

    assert shlex.split(row["services"][0]["start"]) == [
        *("docker", "run", "--detach", "--name", "cache", "--publish", "6379:6379", "redis:7", "--save", ""),
    ]


def test_the_documented_workflow_uses_the_matrix_as_printed() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    matrix_job, conformance = jobs["matrix"], jobs["conformance"]
    produce = next(step for step in matrix_job["steps"] if step.get("id") == "matrix")

    assert "worlds ci matrix worlds-manifest.json" in produce["run"]
    assert conformance["needs"] == "matrix"
    assert conformance["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    text = yaml.safe_dump(conformance)
    row_keys = set(ci_matrix(load_manifest(REPO_MANIFEST)).include[0])
    used = set(re.findall(r"(?<![.\w])matrix\.(\w+)", text))
    assert {"world", "package", "services", "env", "setup"} <= used <= row_keys
    runs = [step.get("run", "") for step in conformance["steps"]]
    assert any("worlds test ${{ matrix.world }} --certify --worlds-report=report.json" in run for run in runs)
    assert any(".[].start" in run for run in runs)  # services are started from the matrix's commands
    assert any("worlds report report.json --badge" in run for run in runs)
    assert "worlds report reports/*/report.json" in yaml.safe_dump(jobs["summary"])
