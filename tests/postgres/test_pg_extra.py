"""The Postgres World is the optional extra ``worlds-sdk[postgres]``: a default install lists it, not a failure.

Each test runs a fresh interpreter in which psycopg cannot be imported
(``without_psycopg.py``), as after ``pip install worlds-sdk`` without the
extra. No server is needed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUNNER = Path(__file__).with_name("without_psycopg.py")
CLI = "from worlds_sdk.cli import main\nsys.exit(main(sys.argv[2:]))\n"


def without_psycopg(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUNNER), code, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_plugin_module_imports_without_psycopg(tmp_path: Path) -> None:
    probe = (
        "import reference_worlds.postgres.plugin as plugin\n"
        "(backend,) = plugin.worlds_register()\n"
        "print(backend.id, backend.extra.missing())\n"
        "print(sorted(m for m in sys.modules if m.startswith('psycopg')))\n"
    )
    done = without_psycopg(probe, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["postgres ('psycopg', 'psycopg_pool')", "[]"]


def test_worlds_list_without_psycopg_says_what_to_install_and_warns_nothing(tmp_path: Path) -> None:
    done = without_psycopg(CLI, "list", cwd=tmp_path)

    assert (done.returncode, done.stderr) == (0, "")
    (postgres,) = [line for line in done.stdout.splitlines() if line.startswith("postgres ")]
    assert "not installed: pip install 'worlds-sdk[postgres]'" in postgres
    assert any(line.split()[:2] == ["local", "installed"] for line in done.stdout.splitlines())


def test_worlds_test_postgres_without_psycopg_is_one_clear_line(tmp_path: Path) -> None:
    done = without_psycopg(CLI, "test", "postgres", cwd=tmp_path)

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "worlds: error: World 'postgres' is not installed: pip install 'worlds-sdk[postgres]' "
        "(no module named 'psycopg', 'psycopg_pool')\n"
    )
