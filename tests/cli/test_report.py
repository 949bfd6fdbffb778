"""``worlds report``: bad input is one error line. Rendering is tested on real reports in test_author_path.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worlds_sdk.cli import main


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a worlds conformance report (Expecting property name"),
        (json.dumps({"world": "x"}), "not a worlds conformance report (missing key 'rules')"),
        (json.dumps([1, 2]), "not a worlds conformance report (list indices must be integers"),
    ],
)
def test_a_file_that_is_not_a_report_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "report.json"
    path.write_text(content)

    assert main(["report", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"worlds: error: {path}: {message}")


def test_a_badge_is_for_one_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "a.json", "b.json", "--badge", str(tmp_path / "badge.json")]) == 2
    assert capsys.readouterr().err == "worlds: error: --badge takes exactly one report (one badge per World)\n"
    assert not (tmp_path / "badge.json").exists()


def test_a_missing_report_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "absent.json")]) == 74  # an OSError: sysexits EX_IOERR, see docs/cli.md
    assert capsys.readouterr().err == f"worlds: error: {tmp_path / 'absent.json'}: No such file or directory\n"


def test_worlds_sdk_imports_no_conformance_module() -> None:
    """One-way dependency: ``worlds report`` imports the conformance package only when it runs."""
    code = (
        "import importlib, pkgutil, sys, worlds_sdk\n"
        "for module in pkgutil.walk_packages(worlds_sdk.__path__, 'worlds_sdk.'):\n"
        "    importlib.import_module(module.name)\n"
        "from worlds_sdk.cli import build_parser\n"
        "build_parser()\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'conformance'], sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
