"""A setup failure is no verdict: the run stops at once, with one line, and every rule says ``error``.

A CI gate built on the suite must not reject a correct World because a service
was down or a sandbox setting was wrong, nor pass it; these runs are the two a CI
maintainer meets first.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.plugin import NOT_JUDGED


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


def _suite(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, f"--worlds-report={report}", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, json.loads(report.read_text())


@pytest.mark.parametrize(
    ("args", "env", "cause"),
    [
        pytest.param(
            ["--world=local", "--world-config", '{"path": "/nonexistent/x"}', "--certify"],
            {},
            "FileNotFoundError",
            id="bad-sandbox-setting",
        ),
        pytest.param(
            ["--world=postgres"],
            {"WORLDS_POSTGRES_URL": f"postgresql://worlds:worlds@127.0.0.1:{_closed_port()}/worlds"},
            "WorldUnavailableError",
            id="postgres-down",
        ),
    ],
)
def test_setup_failure_stops_the_run_with_error_not_fail(
    tmp_path: Path, args: list[str], env: dict[str, str], cause: str
) -> None:
    proc, report = _suite(tmp_path, *args, env=env)
    assert proc.returncode == NOT_JUDGED, proc.stdout[-3000:]
    lines = [line for line in proc.stdout.splitlines() if "setup error" in line]
    assert len(lines) == 1 and cause in lines[0], proc.stdout[-3000:]
    assert "no tests ran" in proc.stdout  # stopped at the first test, before any verdict
    assert report["setup_error"] and cause in report["setup_error"]
    statuses = {rule["status"] for rule in report["rules"].values()}
    assert statuses == {"error"}, statuses
    assert report["summary"]["error"] == len(report["rules"]) >= 19
    assert report["summary"]["fail"] == report["summary"]["pass"] == 0
