"""The suite's own tests: every rule family's check is shown able to fail.

Each mutant World breaks one rule; running the suite against it must fail in the
tests of that rule, while a control test of an unrelated rule still passes (so
the failure is the bug being caught, not the mutant being unusable). The
unbroken in-memory World and the local World must pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTROL = ("test_EV3_world_mints_run_ids", "EV-3")


def run_suite(world: str, selection: str, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "WORLDS_HYPOTHESIS_PROFILE": "quick",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"--world={world}",
            "-k",
            selection,
            f"--worlds-report={report}",
            "-p",
            "no:cacheprovider",
            "-q",
            "--timeout=120",
            *extra,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return proc, data


MUTANTS = [
    # (mutant, the tests that must catch it, the rule they check)
    ("non_atomic_write", "test_EV1_readers_never_see_half_an_event", "EV-1"),
    ("racy_hook_token", "test_HK1_token_unique_under_concurrent_creation", "HK-1"),
    ("hooks_outlive_run", "test_HK3_terminal_run_disposes_hooks_and_waits", "HK-3"),
    ("self_conflict", "test_HK2_resending_same_hook_conflicts_not_self_conflict", "HK-2"),
    ("run_started_appends_twice", "test_EV5_run_started_on_running_run_appends_nothing", "EV-5"),
    ("events_out_of_order", "test_EV11_events_listed_in_append_order", "EV-11"),
    ("truncates_at_nul", "test_PL1_event_payloads_round_trip", "PL-1"),
    ("drops_failed_messages", "test_Q1_redelivered_after_handler_raises", "Q-1"),
    ("ignores_idempotency_key", "test_Q3_idempotency_key_yields_one_message", "Q-3"),
    ("ignores_delay", "test_Q4_delay_seconds_honoured", "Q-4"),
    ("duplicates_live_chunks", "test_ST1_live_reader_sees_existing_then_new_chunks", "ST-1"),
    ("ack_before_handling", "test_Q5_message_of_killed_consumer_redelivered", "Q-5"),
]


@pytest.mark.parametrize(("mutant", "tests", "rule"), MUTANTS, ids=[m[0] for m in MUTANTS])
def test_suite_catches_mutant(mutant: str, tests: str, rule: str, tmp_path: Path) -> None:
    proc, report = run_suite(f"tests.mutants.worlds:{mutant}", f"{tests} or {CONTROL[0]}", tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    rules = report["rules"]
    assert rules[rule]["status"] == "fail", rules
    assert rules[CONTROL[1]]["status"] == "pass", rules


MODEL_MUTANTS = [
    ("hooks_outlive_run", "test_MB1_events_hooks_waits_agree_with_oracle", "MB-1"),
    ("self_conflict", "test_MB1_events_hooks_waits_agree_with_oracle", "MB-1"),
    ("drops_failed_messages", "test_MB2_queue_history_is_at_least_once", "MB-2"),
    ("ignores_idempotency_key", "test_MB2_queue_history_is_at_least_once", "MB-2"),
]


@pytest.mark.parametrize(("mutant", "tests", "rule"), MODEL_MUTANTS, ids=[f"{m[0]}-{m[2]}" for m in MODEL_MUTANTS])
def test_state_machines_catch_mutant(mutant: str, tests: str, rule: str, tmp_path: Path) -> None:
    proc, report = run_suite(f"tests.mutants.worlds:{mutant}", tests, tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert report["rules"][rule]["status"] == "fail"


def test_unbroken_memory_world_passes_the_suite(tmp_path: Path) -> None:
    proc, report = run_suite("tests.mutants.memory_world:memory", "test_", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["summary"]["fail"] == 0 and report["summary"]["pass"] > 15


def test_certification_fails_on_a_missing_must_capability(tmp_path: Path) -> None:
    proc, report = run_suite(
        "tests.mutants.memory_world:memory", "test_HK1_token_unique_across_processes", tmp_path, "--certify"
    )
    assert proc.returncode == 1
    assert "certification: MUST rule HK-1 cannot be checked" in proc.stdout
    assert "multi_process" in proc.stdout
    assert report["rules"]["HK-1"]["status"] == "fail"
