"""``worlds inspect``, ``doctor``, ``gc`` and ``metrics`` against both reference Worlds, each seeded."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conformance.builders import hook_request, new_run, new_step, step_request, terminal_request
from conformance.reading import (
    all_events,
    all_runs,
    all_steps,
    entities_imply_events,
    events_imply_entities,
)
from worlds_sdk.cli import USAGE_ERROR, main
from worlds_sdk.discovery import resolve_world
from worlds_sdk.errors import WorkflowRunNotFoundError
from worlds_sdk.models import MessageMeta
from worlds_sdk.protocols import InspectableWorld

from .seeded import Seeded, seed


@pytest.fixture(scope="module")
def pg_sandbox() -> Iterator[Any]:
    from reference_worlds.postgres.plugin import postgres_sandbox

    with postgres_sandbox({}) as sandbox:
        yield sandbox


@pytest.fixture(params=["local", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any], Seeded]]:
    """A World id, the config that opens the user's data, and what was seeded there."""
    backend = resolve_world(request.param)
    if request.param == "local":
        config: dict[str, Any] = {"path": str(tmp_path / "world")}
        yield request.param, config, seed(backend, config)
    else:
        with request.getfixturevalue("pg_sandbox").instance() as instance:
            config = dict(instance)
            yield request.param, config, seed(backend, config)


def worlds(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_shows_the_runs_timeline_and_children(capsys: pytest.CaptureFixture[str], world: Any) -> None:
    name, config, seeded = world
    code, out, _ = worlds(capsys, "inspect", name, seeded.stuck, "--world-config", json.dumps(config), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["run"]["status"] == "running"
    assert [row["event"] for row in report["timeline"]] == [
        "run_created",
        "run_started",
        "step_created",
        "step_started",
        "step_retrying",
        "hook_created",
        "wait_created",
    ]
    assert report["timeline"][0]["delta_s"] is None and all(r["delta_s"] >= 0 for r in report["timeline"][1:])
    (step,) = report["steps"]
    assert (step["step_id"], step["status"], step["attempt"], step["error"]) == ("charge", "pending", 1, "retry")
    assert step["retry_after"] is not None
    assert [h["hook_id"] for h in report["hooks"]] == ["approval"]
    assert report["waits"] == [
        {"wait_id": "cooldown", "status": "waiting", "resume_at": report["waits"][0]["resume_at"]}
    ]
    assert report["streams"] == [{"name": "log", "chunks": 1, "done": False}]

    code, out, _ = worlds(capsys, "inspect", name, seeded.stuck, "--world-config", json.dumps(config))
    assert code == 0 and "step_retrying" in out and "charge" in out and "streams: 1" in out


def test_doctor_reports_the_stuck_run_the_overdue_retry_and_the_dead_letter(
    capsys: pytest.CaptureFixture[str], world: Any
) -> None:
    name, config, seeded = world
    args = ["doctor", name, "--world-config", json.dumps(config), "--stuck-after", "0", "--json"]
    code, out, _ = worlds(capsys, *args)
    assert code == 1
    findings = {(f["check"], f["subject"]) for f in json.loads(out)["findings"]}
    assert findings == {
        ("stuck_run", seeded.stuck),
        ("retry_overdue", f"{seeded.stuck}/charge"),
        ("dead_letters", "__wkf_step_seeded"),
    }
    code, out, _ = worlds(capsys, "doctor", name, "--world-config", json.dumps(config), "--stuck-after", "0")
    assert code == 1 and "needs attention: 3 finding(s)" in out and "order 42 has no customer" in out
    code, out, _ = worlds(capsys, "doctor", name, "--world-config", json.dumps(config), "--stuck-after", "3600")
    assert code == 1 and "stuck_run" not in out, "a threshold is a flag"


def test_doctor_reports_a_message_failing_again_and_again_and_an_old_ready_one(
    capsys: pytest.CaptureFixture[str], world: Any, eventually: Any
) -> None:
    name, config, _ = world
    backend = resolve_world(name)
    fast = {**config, "backoff_initial": 0.01, "backoff_max": 0.02}

    async def fail_twice() -> None:
        opened = backend.factory(fast)

        async def broken(message: Any, meta: MessageMeta) -> None:
            raise RuntimeError("the handler is broken")

        try:
            opened.register_handler("__wkf_workflow_", broken)
            await opened.queue("__wkf_workflow_failing", {"n": 1})
            await opened.start()
            assert isinstance(opened, InspectableWorld)

            async def failed_twice() -> bool:
                stats = {s.queue_name: s for s in await opened.queue_stats()}
                failing = stats.get("__wkf_workflow_failing")
                return failing is not None and failing.max_failures >= 2

            await eventually(failed_twice, what="two failed deliveries")
        finally:
            await opened.close()
        waiting = backend.factory(config)
        try:
            await waiting.queue("__wkf_step_waiting", {"n": 2})
        finally:
            await waiting.close()

    asyncio.run(fail_twice())
    args = [
        "doctor",
        name,
        "--world-config",
        json.dumps(config),
        "--max-failures",
        "2",
        "--max-ready-age",
        "0",
        "--json",
    ]
    code, out, _ = worlds(capsys, *args)
    assert code == 1
    findings = {(f["check"], f["subject"]) for f in json.loads(out)["findings"]}
    assert {("repeated_failures", "__wkf_workflow_failing"), ("old_ready", "__wkf_step_waiting")} <= findings


def test_gc_deletes_only_the_old_terminal_runs_and_dry_run_deletes_nothing(
    capsys: pytest.CaptureFixture[str], world: Any
) -> None:
    name, config, seeded = world
    base = ["gc", name, "--world-config", json.dumps(config), "--completed-before", "0s"]
    code, out, _ = worlds(capsys, *base, "--dry-run")
    assert code == 0 and out.startswith("would delete 3 terminal runs")
    code, out, _ = worlds(capsys, *base[:-1], "1h", "--dry-run")
    assert code == 0 and out.startswith("would delete 0 terminal runs"), "runs completed just now are not an hour old"
    code, out, err = worlds(capsys, *base, "--batch-size", "2")
    assert code == 0 and out.startswith("deleted 3 terminal runs")
    assert err.splitlines() == ["deleted 2 runs…", "deleted 3 runs…"]
    for run_id in seeded.completed:
        code, _, err = worlds(capsys, "inspect", name, run_id, "--world-config", json.dumps(config))
        assert code == USAGE_ERROR and "does not exist" in err
    code, _, _ = worlds(capsys, "inspect", name, seeded.stuck, "--world-config", json.dumps(config))
    assert code == 0, "the live run is kept"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inspect", "local", "wrun_nope"], "run 'wrun_nope': "),
        (["gc", "local", "--completed-before", "thirty days"], "expected a duration like 30d"),
        (["gc", "local", "--completed-before", "30d", "--batch-size", "0"], "expected a positive integer"),
        (["gc", "local"], "--completed-before"),
        (["doctor", "local", "--stuck-after", "-1"], "non-negative number of seconds"),
        (["doctor", "tests.mutants.worlds:ack_before_handling", "--world-config", "[]"], "expected a JSON object"),
        (["doctor", "nowhere-world"], "nowhere-world"),
    ],
)
def test_bad_input_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    config = ["--world-config", json.dumps({"path": str(tmp_path / "world")})] if "local" in argv else []
    code, out, err = worlds(capsys, *argv, *config)
    assert code == USAGE_ERROR, err
    assert out == "" and len(err.splitlines()) == 1 and message in err, err


def test_doctor_on_a_local_world_of_another_format_is_a_finding(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "world").mkdir()
    conn = sqlite3.connect(tmp_path / "world" / "world.sqlite3")
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('format_version', '99');"
    )
    conn.close()
    code, out, _ = worlds(capsys, "doctor", "local", "--world-config", json.dumps({"path": str(tmp_path / "world")}))
    assert code == 1 and "version" in out and "'99'" in out


def test_doctor_on_a_postgres_schema_newer_than_the_code_is_a_finding(
    capsys: pytest.CaptureFixture[str], pg_sandbox: Any
) -> None:
    import psycopg
    from psycopg import sql

    with pg_sandbox.instance() as config:
        with psycopg.connect(config["url"], autocommit=True) as conn:
            # The newest migration claims a version (and, where recorded, a code version) from the future.
            columns = {
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = %s AND table_name = 'schema_version'",
                    (config["schema"],),
                )
            }
            future = "version = 999" + (", min_code_version = 999" if "min_code_version" in columns else "")
            table = sql.Identifier(config["schema"], "schema_version")
            conn.execute(
                sql.SQL("UPDATE {} SET " + future + " WHERE version = (SELECT max(version) FROM {})").format(
                    table, table
                )
            )
        code, out, _ = worlds(capsys, "doctor", "postgres", "--world-config", json.dumps(dict(config)))
    assert code == 1 and "needs attention" in out and "version 999" in out


def test_metrics_prints_the_queue_and_run_figures(capsys: pytest.CaptureFixture[str], world: Any) -> None:
    name, config, _ = world
    code, out, _ = worlds(capsys, "metrics", name, "--world-config", json.dumps(config))
    assert code == 0
    assert 'worlds_queue_dead_letters{queue="__wkf_step_seeded"} 1\n' in out
    assert 'worlds_queue_ready_messages{queue="__wkf_step_seeded"} 0\n' in out
    assert 'worlds_runs{status="running"} 1\n' in out
    assert "# TYPE worlds_queue_ready_messages gauge\n" in out


def test_metrics_serves_metrics_and_healthz_over_http_until_sigterm(world: Any) -> None:
    """A sidecar is stopped with SIGTERM (a container's stop): it closes the World and exits 0.

    SIGTERM, not SIGINT: a process started in the background of a script inherits
    SIGINT ignored, so Ctrl-C is for a terminal, and a test that sent it would hang there.
    """
    name, config, _ = world
    proc = subprocess.Popen(
        [sys.executable, "-m", "worlds_sdk.cli", "metrics", name, "--world-config", json.dumps(config), "--serve", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line + proc.stderr.read() if proc.stderr else line
        base = line.split()[1].removesuffix("/metrics")
        with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert 'worlds_queue_dead_letters{queue="__wkf_step_seeded"} 1' in response.read().decode()
        with urllib.request.urlopen(f"{base}/healthz", timeout=30) as response:
            assert (response.status, response.read()) == (200, b"ok\n")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/nothing", timeout=30)
        assert missing.value.code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            proc.kill()  # no-op once it has exited; never left running if it did not
            stderr = proc.stderr.read() if proc.stderr is not None else ""
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    assert (proc.returncode, stderr) == (0, "")


def test_metrics_refuses_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = worlds(capsys, "metrics", "local", "--serve", "70000")
    assert code == USAGE_ERROR and out == "" and "port number 0-65535" in err


def test_gc_beside_writers_deletes_finished_runs_whole_and_never_touches_a_live_one(world: Any) -> None:
    """``gc`` is documented as safe beside a World in use: here it loops while four writers
    finish runs and leave others running. Every writer call must succeed (gc never takes a
    live run, nor a run between its events), every deleted run is gone with everything it
    owned, and every run left is whole (its events and entities agree)."""
    name, config, seeded = world

    async def scenario() -> None:
        w = resolve_world(name).factory(config)
        assert isinstance(w, InspectableWorld)
        finished: list[str] = []
        live: list[str] = []
        writing = True

        async def writer(n: int) -> None:
            for i in range(8):
                run = await new_run(w, started=True)
                await new_step(w, run.run_id, f"s{n}_{i}", started=True)
                await w.events.create(run.run_id, hook_request("hook_created", f"h{n}_{i}", token=f"gc-{n}-{i}"))
                await w.events.create(run.run_id, step_request("step_completed", f"s{n}_{i}"))
                if i % 4 == 3:
                    live.append(run.run_id)
                    continue
                await w.events.create(run.run_id, terminal_request("completed"))
                finished.append(run.run_id)

        async def collector() -> int:
            deleted = 0
            while writing:
                deleted += await w.delete_expired_runs(datetime.now(UTC), batch_size=3)
                await asyncio.sleep(0)
            return deleted + await w.delete_expired_runs(datetime.now(UTC), batch_size=1000)

        try:
            gc = asyncio.create_task(collector())
            await asyncio.gather(*(writer(n) for n in range(4)))
            writing = False
            deleted = await gc
            assert deleted == len(finished) + len(seeded.completed)
            for run_id in finished:
                with pytest.raises(WorkflowRunNotFoundError):
                    await w.runs.get(run_id)
                assert await all_events(w, run_id) == [] and await all_steps(w, run_id) == []
            for run_id in [*live, seeded.stuck]:
                run = await w.runs.get(run_id)
                events, steps = await all_events(w, run_id), await all_steps(w, run_id)
                assert run.status == "running"
                assert not events_imply_entities(events, steps, run) + entities_imply_events(steps, run, events)
            assert sorted(r.run_id for r in await all_runs(w)) == sorted([*live, seeded.stuck])
        finally:
            await w.close()

    asyncio.run(scenario())


def test_dead_letters_requeue_and_quarantine_from_the_command_line(
    capsys: pytest.CaptureFixture[str], world: Any
) -> None:
    name, config, seeded = world
    at = ["--world-config", json.dumps(config)]
    code, out, _ = worlds(capsys, "dead-letters", name, *at)
    assert code == 0 and seeded.dead_letter in out and "ValueError: order 42 has no customer" in out
    code, out, _ = worlds(capsys, "dead-letters", name, *at, "--json")
    (letter,) = json.loads(out)
    assert letter["message_id"] == seeded.dead_letter and letter["message"] == {"order": 42}

    code, out, err = worlds(capsys, "requeue", name, seeded.dead_letter, "msg_not_dead", *at)
    assert (code, out) == (1, "requeued 1 dead letter\n") and "1 of the 2 ids were not dead letters" in err
    code, out, _ = worlds(capsys, "dead-letters", name, *at)
    assert (code, out) == (0, "no dead letters\n")

    code, out, _ = worlds(capsys, "quarantine", name, *at, seeded.dead_letter, "--reason", "poison again")
    assert (code, out) == (0, f"quarantined {seeded.dead_letter}\n")
    code, out, _ = worlds(capsys, "requeue", name, *at, "--all")
    assert (code, out) == (0, "requeued 1 dead letter\n")
    code, _, err = worlds(capsys, "quarantine", name, *at, "msg_nope", "--reason", "x")
    assert code == USAGE_ERROR and "msg_nope" in err and len(err.splitlines()) == 1
    code, _, err = worlds(capsys, "requeue", name, *at)
    assert code == USAGE_ERROR and "--all" in err
