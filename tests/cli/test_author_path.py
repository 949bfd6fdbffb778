"""The World author's path end to end: ``worlds new``, a wheel, a fresh venv, the suite, ``worlds report``.

Both templates are generated into a temporary directory, built into wheels and
installed into a new virtual environment, then run as an author would run them:
the skeleton must give a full per-rule verdict table in which every unwritten part
fails its rules by name and nothing crashes; the memory template must pass the
single-process suite. The reports of those two real runs then feed ``worlds report``.

The fresh venv sees this environment's site-packages through a ``.pth`` file (the
SDK under test and its dependencies, without a network); the generated packages
themselves are installed only from their wheels, and the suite runs from a
directory outside the generated source, so a file the wheel forgot fails here.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.markers import rule_of
from conformance.plugin import SUITE_DIR
from worlds_sdk import __version__
from worlds_sdk.cli import main
from worlds_sdk.memory import CAPABILITIES as MEMORY_CAPABILITIES
from worlds_sdk.scaffold import create


@dataclass(frozen=True)
class Authored:
    root: Path
    python: Path
    outside: Path
    """An empty directory outside every generated package: runs from here import the installed wheels only."""

    def run(self, *argv: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *argv], cwd=cwd or self.outside, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture(scope="module")
def authored(tmp_path_factory: pytest.TempPathFactory) -> Authored:
    root = tmp_path_factory.mktemp("author")
    assert main(["new", "demo", "--directory", str(root / "demo")]) == 0
    assert main(["new", "memo", "--template", "memory", "--directory", str(root / "memo")]) == 0
    wheels = root / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*build, "-w", str(wheels), str(root / "demo"), str(root / "memo")], check=True, timeout=300)
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    fresh_purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    here = sysconfig.get_paths()["purelib"]
    Path(fresh_purelib, "worlds-under-test.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", fresh_purelib]
    subprocess.run([*install, *sorted(str(w) for w in wheels.glob("*.whl"))], check=True, timeout=300)
    outside = root / "elsewhere"
    outside.mkdir()
    return Authored(root, python, outside)


@pytest.fixture(scope="module")
def skeleton_run(authored: Authored) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    path = authored.root / "demo.json"
    proc = authored.run("-m", "pytest", "-p", "no:cacheprovider", "--world=demo", f"--worlds-report={path}")
    return proc, json.loads(path.read_text()), path


@pytest.fixture(scope="module")
def memory_run(authored: Authored) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    """The generated package's own command (its tox.ini's): its tests plus the suite, from its directory."""
    path = authored.root / "memo.json"
    proc = authored.run(
        "-m", "pytest", "-p", "no:cacheprovider", "tests", "--world=memo", f"--worlds-report={path}",
        cwd=authored.root / "memo",
    )  # fmt: skip
    return proc, json.loads(path.read_text()), path


def suite_rules() -> set[str]:
    """Every rule key the suite can report (``EV-11``, ``EV-11/SHOULD``), read from its test names."""
    rules = set()
    for path in SUITE_DIR.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and (ref := rule_of(node.name)) is not None:
                rules.add(ref.rule if ref.level == "MUST" else f"{ref.rule}/{ref.level}")
    return rules


def test_generated_packages_lint_clean(authored: Authored) -> None:
    for name in ("demo", "memo"):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
            cwd=authored.root / name,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_fresh_venv_lists_both_generated_worlds(authored: Authored) -> None:
    proc = authored.run("-m", "worlds_sdk.cli", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    worlds = {row["id"]: row for row in json.loads(proc.stdout)["worlds"]}
    assert worlds["demo"]["status"] == "installed"
    assert (worlds["demo"]["plugin"], worlds["demo"]["distribution"]) == ("demo", "demo")
    assert worlds["demo"]["capabilities"] == []
    assert worlds["memo"]["status"] == "installed"
    assert worlds["memo"]["capabilities"] == sorted(MEMORY_CAPABILITIES)


def test_the_skeleton_gives_a_verdict_for_every_rule_without_crashing(
    skeleton_run: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path],
) -> None:
    proc, report, _ = skeleton_run
    assert proc.returncode == 1, proc.stdout[-3000:]  # tests failed; not an internal or usage error
    assert "INTERNALERROR" not in proc.stdout
    assert "World conformance by rule" in proc.stdout
    assert report["complete"] is True
    assert set(report["rules"]) == suite_rules()
    # Only what the glue keeps without any storage passes: queue names are refused by the
    # SDK's check before the store is asked (QN-1). Everything else fails, or skips.
    verdicts = {rule: verdict["status"] for rule, verdict in report["rules"].items()}
    assert {rule for rule, status in verdicts.items() if status == "pass"} <= {"QN-1"}, verdicts
    assert set(verdicts.values()) <= {"fail", "skip", "pass"}, verdicts
    for rule, info in report["rules"].items():
        for test in info["tests"]:
            if test["outcome"] == "failed":
                # Each failure names the unwritten store method (exception groups included).
                assert "NotImplementedError" in test["reason"] and "is not written yet" in test["reason"], (
                    rule,
                    test,
                )
            elif test["outcome"] == "skipped":
                # what the skeleton does not claim: a capability, or an optional surface
                reason = test["reason"]
                assert "does not declare capability" in reason or "does not implement the optional" in reason, (
                    rule,
                    test,
                )
            else:  # a refusal the SDK's checks in the glue already give (a bad run id, a bad queue name)
                assert test["outcome"] == "passed", (rule, test)


def test_the_memory_template_passes_the_single_process_suite(
    memory_run: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path],
) -> None:
    proc, report, _ = memory_run
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "tests/test_plugin.py .." in proc.stdout  # the package's own tests ran too
    assert report["complete"] is True
    assert set(report["rules"]) == suite_rules()
    assert report["summary"]["fail"] == 0
    for rule, info in report["rules"].items():
        for test in info["tests"]:
            skipped_for_a_reason = "does not declare capability" in test["reason"] or (
                info["level"] == "MAY" and "does not implement the optional" in test["reason"]
            )
            assert test["outcome"] == "passed" or skipped_for_a_reason, (rule, test)


def test_worlds_report_renders_the_real_reports(
    skeleton_run: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path],
    memory_run: tuple[subprocess.CompletedProcess[str], dict[str, Any], Path],
    authored: Authored,
) -> None:
    _, demo, demo_path = skeleton_run
    _, memo, memo_path = memory_run

    proc = authored.run("-m", "worlds_sdk.cli", "report", str(memo_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "## World conformance: memo"
    must = [rule for rule, info in memo["rules"].items() if info["level"] == "MUST"]
    passed = sum(1 for rule in must if memo["rules"][rule]["status"] == "pass")
    assert f"{passed}/{len(must)} MUST rules pass" in proc.stdout
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| rule")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == list(memo["rules"])

    proc = authored.run("-m", "worlds_sdk.cli", "report", str(memo_path), str(demo_path))
    assert proc.returncode == 0, proc.stderr
    assert "| rule | level | memo | demo |" in proc.stdout
    assert "| EV-2 | MUST | ✅ pass | ❌ fail |" in proc.stdout

    badge_path = authored.root / "badge.json"
    proc = authored.run("-m", "worlds_sdk.cli", "report", str(demo_path), "--badge", str(badge_path))
    assert proc.returncode == 0, proc.stderr
    demo_must = [info["status"] for info in demo["rules"].values() if info["level"] == "MUST"]
    assert json.loads(badge_path.read_text()) == {
        "schemaVersion": 1,
        "label": "conformance",
        "message": f"{demo_must.count('pass')}/{len(demo_must)} MUST",
        "color": "red",
    }


def test_new_refuses_a_directory_in_the_way_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists"):
        create("taken", tmp_path / "taken", sdk_version=__version__)
    assert os.listdir(tmp_path / "taken") == ["keep.txt"]
