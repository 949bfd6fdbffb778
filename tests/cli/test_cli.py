"""The ``worlds`` command, run in-process through ``main(argv)`` and, where a fresh interpreter matters, as a process.

These tests use the environment's real plugins: the local World is installed
(editable) with the project, under the ``local`` entry point.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from worlds_sdk import SPEC_VERSION, __version__
from worlds_sdk.cli import (
    COMMANDS,
    INTERRUPTED,
    OS_ERROR,
    USAGE_ERROR,
    WORLD_ERROR,
    Command,
    main,
    pytest_arguments,
)
from worlds_sdk.manifest import PYTHON_FIELDS, parse_manifest

REPO_MANIFEST = Path(__file__).parents[2] / "worlds-manifest.json"
LOCAL_CAPABILITIES = "crash_safe, delayed_delivery, durable_queue, inspection, live_streams, multi_process"


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty directory, so no ./worlds-manifest.json is picked up by accident."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def worlds_process(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worlds_sdk.cli", *argv], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def write_manifest(directory: Path, *entries: dict[str, Any]) -> Path:
    path = directory / "worlds-manifest.json"
    path.write_text(json.dumps({"worlds": list(entries)}))
    return path


def local_entry(**fields: Any) -> dict[str, Any]:
    repo_local = json.loads(REPO_MANIFEST.read_text())["worlds"][0]
    assert repo_local["id"] == "local"
    return {key: value for key, value in repo_local.items() if key != "$schema"} | fields


def test_version_names_the_package_version_and_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"worlds {__version__} (World spec version {SPEC_VERSION})\n", "")


def test_help_and_version_import_no_world(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from worlds_sdk.cli import main\n"
        "assert main(['--help']) == 0 and main(['--version']) == 0\n"
        "print([m for m in sys.modules if m.startswith(('reference_worlds', 'conformance', 'pytest'))])\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_list_shows_the_installed_local_world_from_its_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")

    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "STATUS", "RUNTIME", "SPEC", "CAPABILITIES", "SOURCE"]
    (local,) = [row for row in rows if row.startswith("local ")]
    assert local.split()[:4] == ["local", "installed", "python", "3"]
    assert LOCAL_CAPABILITIES in local
    assert "plugin local (worlds-sdk)" in local


def test_list_merges_the_manifest_with_installed_plugins(capsys: pytest.CaptureFixture[str], elsewhere: Path) -> None:
    ghost = local_entry(id="ghost", name="Ghost", entryPoint="ghost", package="worlds-ghost")
    write_manifest(elsewhere, local_entry(), ghost)

    code, out, _ = run(capsys, "list", "--json")

    assert code == 0
    rows = {row["id"]: row for row in json.loads(out)["worlds"]}
    assert list(rows)[:2] == ["local", "ghost"]
    assert rows["local"] == {
        "id": "local",
        "status": "installed",
        "install": None,
        "name": "Local",
        "description": local_entry()["description"],
        "inManifest": True,
        "runtime": "python",
        "plugin": "local",
        "distribution": "worlds-sdk",
        "specVersions": [3],
        "capabilities": LOCAL_CAPABILITIES.split(", "),
    }
    assert (rows["ghost"]["status"], rows["ghost"]["plugin"]) == ("not installed", None)
    assert rows["ghost"]["install"] == "pip install 'worlds-ghost'"


def test_list_shows_npm_worlds_of_another_manifest_with_their_runtime(
    capsys: pytest.CaptureFixture[str], elsewhere: Path
) -> None:
    npm = {key: value for key, value in local_entry(id="npm-local").items() if key not in PYTHON_FIELDS}
    manifest = write_manifest(elsewhere, local_entry(), npm | {"package": "@workflow/world-local", "version": "4.4.1"})

    code, out, _ = run(capsys, "list", "--json", "--manifest", str(manifest))

    assert code == 0
    rows = {row["id"]: row for row in json.loads(out)["worlds"]}
    assert (rows["local"]["runtime"], rows["npm-local"]["runtime"]) == ("python", "node")


def test_list_warns_when_the_manifest_and_the_plugin_disagree(
    capsys: pytest.CaptureFixture[str], elsewhere: Path
) -> None:
    manifest = write_manifest(elsewhere, local_entry(capabilities=["durable_queue"]))

    code, _, err = run(capsys, "list", "--manifest", str(manifest))

    assert code == 0
    assert (
        "worlds: warning: local: the manifest claims capabilities [durable_queue], the installed plugin declares "
        f"[{LOCAL_CAPABILITIES}]"
    ) in err.splitlines()


def test_list_with_an_invalid_manifest_is_one_error_line(capsys: pytest.CaptureFixture[str], elsewhere: Path) -> None:
    write_manifest(elsewhere, local_entry(capabilities=["x"]), local_entry())

    code, out, err = run(capsys, "list")

    assert (code, out) == (2, "")
    assert err == (
        "worlds: error: worlds-manifest.json: invalid manifest, 2 problems "
        "(see 'worlds validate-manifest worlds-manifest.json'); first: $.worlds[0].capabilities[0]: "
        "unknown capability 'x'; known: crash_safe, delayed_delivery, durable_queue, effectively_once_delivery, "
        "encryption, inspection, legacy_spec_1, live_streams, multi_process\n"
    )


def test_validate_manifest_accepts_the_repo_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate-manifest", str(REPO_MANIFEST))

    assert (code, err) == (0, "")
    assert out == f"{REPO_MANIFEST}: valid (2 Worlds: local, postgres)\n"


def test_validate_manifest_accepts_upstreams_manifest_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    upstream = REPO_MANIFEST.parent / "reference_worlds" / "node" / "upstream-worlds-manifest.json"
    code, out, err = run(capsys, "validate-manifest", str(upstream))
    assert (code, err) == (0, "")
    assert "valid (16 Worlds: local, postgres, vercel, turso," in out


def test_validate_manifest_prints_every_problem_and_fails(capsys: pytest.CaptureFixture[str], elsewhere: Path) -> None:
    nameless = local_entry(id="nameless")
    del nameless["id"]
    sick = local_entry(id="sick", services=[{"name": "db", "image": "db:1", "healthCheck": {"retries": 0}}])
    write_manifest(
        elsewhere, nameless, local_entry(), local_entry(), local_entry(id="dreamer", capabilities=["telepathy"]), sick
    )

    code, out, err = run(capsys, "validate-manifest")

    assert code == 1
    assert [line.split(": ")[0] for line in out.splitlines()] == [
        "$.worlds[0].id",
        "$.worlds[2].id",
        "$.worlds[3].capabilities[0]",
        "$.worlds[4].services[0].healthCheck.cmd",
        "$.worlds[4].services[0].healthCheck.retries",
    ]
    assert "duplicate id 'local'" in out
    assert "unknown capability 'telepathy'" in out
    assert err == "worlds-manifest.json: 5 problems\n"


def test_test_with_an_unknown_world_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "test", "no-such-world", "-x")

    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith(
        "worlds: error: no World 'no-such-world': not a manifest id, installed World id, entry-point name "
        "or distribution name (known Worlds: "
    )
    assert "local" in line


def test_test_runs_the_conformance_suite_and_returns_pytest_exit_code(tmp_path: Path) -> None:
    collected = worlds_process("test", "local", "--collect-only", "-q", cwd=tmp_path)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "test_events.py::" in collected.stdout
    assert " tests collected in " in collected.stdout

    nothing = worlds_process("test", "local", "-q", "-k", "no_test_has_this_name", cwd=tmp_path)
    assert nothing.returncode == pytest.ExitCode.NO_TESTS_COLLECTED


def test_pytest_gets_the_world_and_loads_the_plugin_only_when_not_autoloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    assert pytest_arguments("local", ["-x"]) == ["--world=local", "-x"]
    assert pytest_arguments("local", ["--disable-plugin-autoload"]) == [
        "--world=local",
        "-p",
        "conformance.plugin",
        "--disable-plugin-autoload",
    ]
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert pytest_arguments("local", []) == ["--world=local", "-p", "conformance.plugin"]


def test_pytest_gets_a_manifest_module_attr_reference_it_can_resolve_without_the_manifest() -> None:
    manifest = parse_manifest({"worlds": [local_entry(id="mine", entryPoint="my_world.plugin:BACKEND")]})
    assert pytest_arguments("mine", [], manifest=manifest)[0] == "--world=my_world.plugin:BACKEND"


BAD_INPUT = [
    # (argv, exit code, the start of the one error line after "worlds: error: ")
    ([], USAGE_ERROR, "the following arguments are required: COMMAND"),
    (["frobnicate"], USAGE_ERROR, "argument COMMAND: invalid choice: 'frobnicate'"),
    (["list", "--colour"], USAGE_ERROR, "unrecognized arguments: --colour"),
    (["list", "--manifest"], USAGE_ERROR, "argument --manifest: expected one argument"),
    (["list", "--manifest", "broken.json"], USAGE_ERROR, "broken.json: invalid manifest, 1 problem: $: not valid JSON"),
    (["list", "--manifest", "latin1.json"], USAGE_ERROR, "latin1.json: invalid manifest, 1 problem: $: not UTF-8"),
    (["list", "--manifest", "absent.json"], OS_ERROR, "absent.json: No such file or directory"),
    (["list", "--manifest", "."], OS_ERROR, ".: Is a directory"),
    (["validate-manifest"], OS_ERROR, "worlds-manifest.json: No such file or directory"),
    (["validate-manifest", "."], OS_ERROR, ".: Is a directory"),
    (["validate-manifest", "a.json", "b.json"], USAGE_ERROR, "unrecognized arguments: b.json"),
    (["test"], USAGE_ERROR, "the following arguments are required: WORLD"),
    (["test", "no-such-world"], USAGE_ERROR, "no World 'no-such-world': not a manifest id"),
    (["test", "no_such_module_xyz:backend"], USAGE_ERROR, "no World 'no_such_module_xyz:backend': no module named"),
    (["test", "worlds_sdk:__version__"], USAGE_ERROR, "'worlds_sdk:__version__' is a str, not a WorldBackend"),
    (["test", "--manifest", "broken.json", "local"], USAGE_ERROR, "broken.json: invalid manifest"),
    (["test", "--manifest", "absent.json", "local"], OS_ERROR, "absent.json: No such file or directory"),
    (["bench"], USAGE_ERROR, "the following arguments are required: WORLD"),
    (["bench", "no-such-world"], USAGE_ERROR, "no World 'no-such-world'"),
    (["bench", "local", "--world-config", "[1]"], USAGE_ERROR, "argument --world-config: expected a JSON object"),
    (["bench", "local", "--world-config", "null"], USAGE_ERROR, "argument --world-config: expected a JSON object"),
    (["bench", "local", "--world-config", "{"], USAGE_ERROR, "argument --world-config: not valid JSON"),
    (["bench", "local", "--world-config", '{"colour": 1}'], USAGE_ERROR, "config: unknown keys ['colour']"),
    (["bench", "local", "--world-config", '{"lease_seconds": -1}'], USAGE_ERROR, "config.lease_seconds: must be"),
    (["bench", "local", "--world-config", '{"path": "absent/world"}'], OS_ERROR, "absent/world/"),
    (["bench", "local", "--writers", "one"], USAGE_ERROR, "argument --writers: expected positive integers"),
    (["bench", "local", "--writers", "1,0"], USAGE_ERROR, "argument --writers: expected positive integers"),
    (["bench", "local", "--writers", ""], USAGE_ERROR, "argument --writers: expected positive integers"),
    (["bench", "local", "--events", "0"], USAGE_ERROR, "argument --events: expected a positive integer, got '0'"),
    (["bench", "local", "--messages", "-5"], USAGE_ERROR, "argument --messages: expected a positive integer"),
    (["bench", "local", "--latency-samples", "x"], USAGE_ERROR, "argument --latency-samples: expected a positive"),
    (["bench", "local", "--repeats", "0"], USAGE_ERROR, "argument --repeats: expected a positive integer"),
    (["migrate"], USAGE_ERROR, "the following arguments are required: WORLD"),
    (["migrate", "local"], USAGE_ERROR, "world 'local' has no migrations"),
    (["migrate", "--manifest", "broken.json", "postgres"], USAGE_ERROR, "broken.json: invalid manifest"),
    (["migrate", "no-such-world"], USAGE_ERROR, "no World 'no-such-world'"),
    (["migrate", "postgres", "--world-config", "[1]"], USAGE_ERROR, "argument --world-config: expected a JSON object"),
    (["migrate", "postgres", "--world-config", '{"colour": 1}'], USAGE_ERROR, "config: unknown keys ['colour']"),
    (
        ["migrate", "postgres", "--world-config", '{"url": "postgresql://127.0.0.1:1/none", "connect_timeout": 1}'],
        WORLD_ERROR,
        "WorldUnavailableError: PostgreSQL is unavailable",
    ),
]


@pytest.mark.parametrize(
    ("argv", "code", "message"), BAD_INPUT, ids=[" ".join(argv) or "-" for argv, _, _ in BAD_INPUT]
)
def test_bad_input_is_one_error_line_and_a_non_zero_exit(
    capsys: pytest.CaptureFixture[str], elsewhere: Path, argv: list[str], code: int, message: str
) -> None:
    (elsewhere / "broken.json").write_text("{")
    (elsewhere / "latin1.json").write_bytes(b'{"worlds": ["\xe9"]}')

    got, out, err = run(capsys, *argv)

    assert (got, out) == (code, "")
    (line,) = err.splitlines()
    assert line.startswith(f"worlds: error: {message}")


def test_exit_codes_are_distinct_and_clear_of_pytest() -> None:
    """``worlds test`` passes pytest's exit codes (0-5) through; ours must not be mistaken for them."""
    assert len({USAGE_ERROR, WORLD_ERROR, OS_ERROR}) == 3
    assert min(WORLD_ERROR, OS_ERROR) > max(pytest.ExitCode)


def exits(value: object) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise SystemExit(value)

    return run


@pytest.mark.parametrize(
    ("value", "code", "err"),
    [("cannot go on", 1, "worlds: error: cannot go on\n"), (3, 3, ""), (None, 0, ""), (0, 0, "")],
)
def test_a_commands_sys_exit_is_not_swallowed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: object, code: int, err: str
) -> None:
    monkeypatch.setitem(COMMANDS, "leave", Command("leave", "sys.exit", lambda parser: None, exits(value)))

    assert run(capsys, "leave") == (code, "", err)


def test_ctrl_c_is_one_line_and_the_shell_s_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(COMMANDS, "wait", Command("wait", "interrupted", lambda parser: None, interrupted))

    assert run(capsys, "wait") == (INTERRUPTED, "", "worlds: interrupted\n")


def test_subcommands_are_registered_in_one_place() -> None:
    assert list(COMMANDS) == [
        "list",
        "validate-manifest",
        "test",
        "bench",
        "migrate",
        "inspect",
        "doctor",
        "gc",
        "dead-letters",
        "requeue",
        "quarantine",
        "metrics",
        "new",
        "report",
        "ci",
    ]


def test_bench_measures_a_world_with_ratios_to_its_storage_floors_and_prints_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys,
        "bench",
        "local",
        "--events",
        "20",
        "--messages",
        "20",
        "--latency-samples",
        "5",
        "--writers",
        "1",
        "--repeats",
        "1",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["world"] == "local" and result["events_per_second"]["1"] > 0
    assert result["messages_per_second"] > 0 and result["latency_p99_ms"] >= result["latency_p50_ms"] > 0
    assert result["floors"]["storage"] == "sqlite" and result["floors"]["commit_1"] > 0
    assert result["ratios"]["events x1"] > 0 and result["ratios"]["queue"] > 0


@pytest.mark.skipif(shutil.which("node") is None, reason="npm Worlds need node")
def test_bench_prints_ours_and_an_npm_world_in_one_table_with_the_bridge_overhead(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "local", "npm:@workflow/world-local@4.4.1", "--events", "10", "--messages", "10"]
    code, out, _ = run(capsys, *argv, "--latency-samples", "5", "--writers", "1", "--repeats", "1")

    assert code == 0
    header, ours, theirs = out.splitlines()
    assert header.split()[-3:] == ["bridge", "rtt", "ms"]
    assert ours.startswith("local ") and ours.endswith("- (in-process)")
    assert theirs.startswith("npm:@workflow/world-local@4.4.1 ") and float(theirs.split()[-1]) > 0
