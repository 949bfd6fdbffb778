"""``worlds new``: names, refusals, and templates that render completely.

Building, installing and running the generated packages is tests/cli/test_author_path.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from worlds_sdk import __version__
from worlds_sdk.cli import main
from worlds_sdk.memory import CAPABILITIES as MEMORY_CAPABILITIES
from worlds_sdk.scaffold import PLACEHOLDER_RE, TEMPLATES, ScaffoldError, WorldNames, create


def test_names_follow_from_the_world_id() -> None:
    names = WorldNames.for_id("my-world_2")
    assert (names.id, names.package, names.distribution, names.class_name, names.title) == (
        "my-world_2",
        "my_world_2",
        "my-world_2",
        "MyWorld2",
        "My World 2",
    )


@pytest.mark.parametrize("bad", ["Mine", "2fast", "-x", "my world", "", "class", "ünïcode"])
def test_an_id_that_cannot_be_a_world_id_and_package_is_refused(bad: str) -> None:
    with pytest.raises(ScaffoldError):
        WorldNames.for_id(bad)


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_placeholder_of_a_template_is_filled(tmp_path: Path, template: str) -> None:
    files = create("my-world", tmp_path / "out", template=template, sdk_version=__version__)

    relative = sorted(str(path.relative_to(tmp_path / "out")) for path in files)
    assert ".github/workflows/conformance.yml" in relative
    assert "my_world/plugin.py" in relative and "my_world/world.py" in relative
    assert ("my_world/store.py" in relative) == (template == "skeleton")
    for path in files:
        assert not PLACEHOLDER_RE.search(path.read_text()), path
        assert "{{" not in str(path) and not path.name.endswith(".tmpl")
    entry = json.loads((tmp_path / "out" / "worlds-manifest-entry.json").read_text())
    expected = sorted(MEMORY_CAPABILITIES) if template == "memory" else []
    assert (entry["id"], entry["pypi"], entry["entryPoint"], entry["capabilities"]) == (
        "my-world",
        "my-world",
        "my-world",
        expected,
    )
    assert f'dependencies = ["worlds-sdk>={__version__}"]' in (tmp_path / "out" / "pyproject.toml").read_text()
    workflow = yaml.safe_load((tmp_path / "out" / ".github" / "workflows" / "conformance.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["conformance"]["steps"]]
    assert "pytest tests --world=my-world --worlds-report=report.json --junitxml=junit.xml" in runs


def test_the_command_reports_bad_input_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "Mine", "--directory", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.startswith("worlds: error: 'Mine' is not a World id")
    assert not (tmp_path / "x").exists()
    assert main(["new", "mine", "--template", "redis", "--directory", str(tmp_path / "x")]) == 2
    assert "invalid choice: 'redis'" in capsys.readouterr().err


def test_the_command_creates_the_package_in_a_directory_named_after_the_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new", "mine"]) == 0
    assert (tmp_path / "mine" / "mine" / "store.py").is_file()
    assert capsys.readouterr().out.splitlines()[-1] == "  cd mine && python -m pip install -e . && pytest --world=mine"
