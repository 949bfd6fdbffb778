"""The suite's own tests: every rule family's check is shown able to fail.

Each mutant World breaks one rule; running the suite against it must fail in the
tests of that rule, for the expected reason, while a control test of an
unrelated rule still passes (so the failure is the bug being caught, not the
mutant being unusable). Every rule the suite checks has a mutant, and that is
itself checked, so a new rule cannot arrive without proof that its tests can
fail. The unbroken in-memory World must pass.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from typing import Any, NamedTuple

import pytest

from conformance.markers import RuleRef, rule_of
from conformance.plugin import SUITE_DIR
from worlds_sdk.backend import WorldBackend

from . import worlds
from .memory_world import MemoryWorld
from .suite_runs import SuiteRun, SuiteRunner

CONTROL = ("test_EV3_world_mints_run_ids", "EV-3")
JOBS = 3
"""Suite runs in flight at once; most of each is a child starting up or waiting on a timeout."""


class Case(NamedTuple):
    """One mutant and the rule whose tests must catch it."""

    mutant: str
    tests: str
    """The rule's tests, as a ``-k`` expression: only these (and the control) run."""
    rule: str
    reason: str
    """Text in the failure of every failing test of the rule: the bug was caught, the mutant did not crash."""
    control: tuple[str, str] | None = CONTROL
    """A test of another rule that must still pass: the mutant is otherwise a working World."""
    slow: bool = False
    """Caught only when a delivery deadline runs out (a lost message)."""

    @property
    def run(self) -> SuiteRun:
        selection = f"{self.tests} or {self.control[0]}" if self.control else self.tests
        return SuiteRun(f"tests.mutants.worlds:{self.mutant}", selection, slow=self.slow)


MUTANTS = [
    Case("non_atomic_write", "test_EV1_readers_never_see_half_an_event", "EV-1", "has no step"),
    Case("returns_stale_run", "test_EV2_create_returns_event_and_entity", "EV-2", "AssertionError"),
    Case(
        "trusts_client_run_ids",
        "test_EV3_bad_client_run_id_rejected",
        "EV-3",
        "DID NOT RAISE ValidationError",
        control=("test_EV4_duplicate_run_created_conflicts", "EV-4"),
    ),
    Case(
        "upserts_run_created", "test_EV4_duplicate_run_created_conflicts", "EV-4", "DID NOT RAISE EntityConflictError"
    ),
    Case("run_started_appends_twice", "test_EV5_run_started_on_running_run_appends_nothing", "EV-5", "AssertionError"),
    Case(
        "bootstraps_without_run_created",
        "test_EV6_run_started_bootstraps_missing_run",
        "EV-6",
        "['run_started'] == ['run_created', 'run_started']",
    ),
    Case(
        "steps_on_terminal_runs",
        "test_EV7_terminal_run_accepts_no_transition",
        "EV-7",
        "DID NOT RAISE EntityConflictError",
    ),
    Case(
        "ignores_retry_after",
        "test_EV8_step_started_before_retry_after_too_early",
        "EV-8",
        "DID NOT RAISE TooEarlyError",
    ),
    Case("completes_waits_twice", "test_EV9_wait_rules", "EV-9", "AssertionError"),
    Case("ignores_spec_version", "test_EV10_run_from_newer_spec", "EV-10", "DID NOT RAISE RunNotSupportedError"),
    Case("events_out_of_order", "test_EV11_events_listed_in_append_order", "EV-11", "AssertionError"),
    Case(
        "hooks_of_any_run",
        "test_EV12_hook_of_another_run_is_not_found",
        "EV-12",
        "DID NOT RAISE HookNotFoundError",
    ),
    Case("created_at_goes_back", "test_EV11_events_listed_in_append_order", "EV-11", "created_at decreases"),
    Case("racy_hook_token", "test_HK1_token_unique_under_concurrent_creation", "HK-1", "AssertionError"),
    Case(
        "self_conflict",
        "test_HK2_resending_same_hook_conflicts_not_self_conflict",
        "HK-2",
        "DID NOT RAISE EntityConflictError",
    ),
    Case(
        "hooks_outlive_run", "test_HK3_terminal_run_disposes_hooks_and_waits", "HK-3", "DID NOT RAISE HookNotFoundError"
    ),
    Case("forgets_disposed_hooks", "test_HK4_concurrent_disposal_has_one_winner", "HK-4", "HookNotFoundError"),
    Case("truncates_at_nul", "test_PL1_event_payloads_round_trip", "PL-1", "AssertionError"),
    Case("drops_dollar_keys", "test_PL1_user_data_with_dollar_keys_round_trips", "PL-1", "AssertionError"),
    Case(
        "drops_failed_messages", "test_Q1_redelivered_after_handler_raises", "Q-1", "condition not reached", slow=True
    ),
    Case("attempt_always_one", "test_Q2_attempts_count_up_and_message_id_is_stable", "Q-2", "[1, 1, 1] == [1, 2, 3]"),
    Case("ignores_idempotency_key", "test_Q3_idempotency_key_yields_one_message", "Q-3", "AssertionError"),
    Case("ignores_delay", "test_Q4_delay_seconds_honoured", "Q-4", "delivered before delay_seconds"),
    Case(
        "ack_before_handling",
        "test_Q5_message_of_killed_consumer_redelivered",
        "Q-5",
        "condition not reached",
        slow=True,
    ),
    Case("recovers_finished_runs", "test_Q6_start_reenqueues_pending_and_running_runs", "Q-6", "AssertionError"),
    Case(
        "recovers_for_the_worlds_deployment",
        "test_Q6_recovery_message_is_for_the_runs_deployment",
        "Q-6",
        "the recovery message's deployment",
    ),
    Case(
        "clamps_negative_delay",
        "test_QO1_bad_queue_options_are_refused",
        "QO-1",
        "{'delay_seconds': -1}: accepted",
    ),
    Case(
        "takes_empty_idempotency_key_as_none",
        "test_QO1_bad_queue_options_are_refused",
        "QO-1",
        "{'idempotency_key': ''}: accepted",
    ),
    Case(
        "messages_for_no_deployment",
        "test_QO2_a_message_is_for_the_given_deployment_else_the_worlds",
        "QO-2",
        "MessageMeta.deployment_id",
    ),
    Case(
        "closed_world_answers_500",
        "test_LC1_a_closed_world_is_unavailable",
        "LC-1",
        "WorkflowWorldError: this memory World is closed",
    ),
    Case("case_blind_queue_names", "test_QN1_invalid_queue_name_rejected", "QN-1", "DID NOT RAISE ValidationError"),
    Case(
        "drops_event_data_unresolved", "test_RD1_resolve_none_strips_exactly_payload_fields", "RD-1", "AssertionError"
    ),
    Case("event_miss_is_none", "test_ER1_read_misses_are_typed_not_found", "ER-1", "DID NOT RAISE NotFoundError"),
    Case("duplicates_live_chunks", "test_ST1_live_reader_sees_existing_then_new_chunks", "ST-1", "AssertionError"),
    Case("streams_need_the_run", "test_ST2_writing_does_not_need_the_run", "ST-2", "WorkflowRunNotFoundError"),
    Case(
        "stats_count_leased_as_ready",
        "test_OP1_queue_stats_count_ready_delayed_and_leased",
        "OP-1",
        "a held message is leased, not ready",
    ),
    Case(
        "quarantine_forgets_the_error",
        "test_OP2_quarantine_keeps_the_message_and_its_error",
        "OP-2",
        "poison: parser crashed",
    ),
    Case("requeue_loses_messages", "test_OP3_requeue_delivers_the_dead_letter_again", "OP-3", "requeue of one"),
    Case(
        "retention_deletes_live_runs",
        "test_OP4_retention_deletes_old_terminal_runs_and_never_a_live_one",
        "OP-4",
        "not the 3 old terminal ones",
    ),
]


MODEL_MUTANTS = [
    # A state machine checks its whole contract, so there is no control test.
    Case("hooks_outlive_run", "test_MB1_events_hooks_waits_agree_with_oracle", "MB-1", "AssertionError", control=None),
    Case(
        "self_conflict",
        "test_MB1_events_hooks_waits_agree_with_oracle",
        "MB-1",
        "expected EntityConflictError, World accepted it",
        control=None,
    ),
    Case(
        "drops_failed_messages",
        "test_MB2_queue_history_is_at_least_once",
        "MB-2",
        "condition not reached",
        control=None,
        slow=True,
    ),
    Case(
        "ignores_idempotency_key",
        "test_MB2_queue_history_is_at_least_once",
        "MB-2",
        "Q-3: same idempotency key",
        control=None,
    ),
    Case(
        "tail_is_chunk_count", "test_MB3_streams_agree_with_list_model", "MB-3", "ST-1: tail index wrong", control=None
    ),
]


UNBROKEN = SuiteRun("tests.mutants.memory_world:memory", None, slow=True)
CERTIFY = SuiteRun("tests.mutants.memory_world:memory", None, ("--certify",), slow=True)
"""Certification runs the whole suite: a selection would leave MUST rules unchecked."""
FIXED_RUNS = {
    "test_unbroken_memory_world_passes_the_suite": UNBROKEN,
    "test_certification_fails_on_a_missing_must_capability": CERTIFY,
}


@pytest.fixture(scope="session")
def suite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRunner]:
    """The suite runs, every selected test's run started at once so they overlap."""
    runner = SuiteRunner(tmp_path_factory.mktemp("suite-runs"), jobs=JOBS)
    wanted = []
    for item in request.session.items:
        params = getattr(item, "callspec", None)
        case = params.params.get("case") if params is not None else None
        run = case.run if isinstance(case, Case) else FIXED_RUNS.get(item.name)
        if run is not None:
            wanted.append(run)
    runner.start(wanted)
    yield runner
    runner.close()


def assert_caught(case: Case, report: dict[str, Any]) -> None:
    """A MUST test of the rule failed, and each failing test of the rule failed for the expected reason.

    The MUST verdict must come from a MUST test of the mutant's own rule: a SHOULD
    check, or another rule's test, failing is not the rule being shown able to fail.
    """
    rule = report["rules"][case.rule]
    assert (rule["status"], rule["level"]) == ("fail", "MUST"), rule
    failed = [t for t in rule["tests"] if t["outcome"] == "failed"]
    names = case.tests.split(" or ")
    caught_by = [t["id"] for t in failed if any(f"::{n}" in t["id"] for n in names)]
    assert caught_by, f"no test of {case.tests} failed: {[t['id'] for t in failed]}"
    assert all(rule_of(i.rsplit("::", 1)[-1]) == RuleRef(case.rule, "MUST") for i in caught_by), caught_by
    reasons = [t["reason"] for t in failed]
    assert all(case.reason in r for r in reasons), reasons


@pytest.mark.parametrize("case", MUTANTS, ids=[c.mutant for c in MUTANTS])
def test_suite_catches_mutant(case: Case, suite: SuiteRunner) -> None:
    assert case.control is not None
    proc, report = suite.result(case.run)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert_caught(case, report)
    assert report["rules"][case.control[1]]["status"] == "pass", report["rules"]


@pytest.mark.parametrize("case", MODEL_MUTANTS, ids=[f"{c.mutant}-{c.rule}" for c in MODEL_MUTANTS])
def test_state_machines_catch_mutant(case: Case, suite: SuiteRunner) -> None:
    proc, report = suite.result(case.run)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert_caught(case, report)


@cache
def suite_tests() -> dict[str, str | None]:
    """Every test function of the suite, with the rule its name carries (None: it carries none)."""
    tests: dict[str, str | None] = {}
    for path in sorted(SUITE_DIR.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                ref = rule_of(node.name)
                tests[node.name] = ref.rule if ref else None
    return tests


def test_every_rule_of_the_suite_has_a_mutant() -> None:
    """A new rule without a mutant fails the build: its tests are not yet shown able to fail."""
    tests = suite_tests()
    assert len(tests) > 50, "the suite was not found"
    assert [name for name, rule in tests.items() if rule is None] == [], "every suite test names its rule"
    missing = sorted({r for r in tests.values() if r} - {c.rule for c in MUTANTS + MODEL_MUTANTS})
    assert not missing, f"rules whose tests no mutant shows able to fail: {missing}"


@pytest.mark.parametrize("case", MUTANTS + MODEL_MUTANTS, ids=[f"{c.mutant}-{c.rule}" for c in MUTANTS + MODEL_MUTANTS])
def test_mutant_cases_select_the_tests_of_their_rule(case: Case) -> None:
    """A renamed test must not leave a case selecting nothing, or the wrong rule's tests."""
    assert isinstance(getattr(worlds, case.mutant), WorldBackend)
    tests = suite_tests()
    for expression, rule in [(case.tests, case.rule), *([case.control] if case.control else [])]:
        for name in expression.split(" or "):
            assert {r for test, r in tests.items() if name in test} == {rule}, name


def test_unbroken_memory_world_passes_the_suite(suite: SuiteRunner) -> None:
    """Also the baseline of every memory mutant: the tests that catch it pass before its seam is broken."""
    proc, report = suite.result(UNBROKEN)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["summary"]["fail"] == 0
    outcomes = {t["id"].rsplit("::", 1)[-1]: t["outcome"] for rule in report["rules"].values() for t in rule["tests"]}
    for case in MUTANTS + MODEL_MUTANTS:
        if built_on_memory_world(getattr(worlds, case.mutant)):
            for name in case.tests.split(" or "):
                selected = {test: outcome for test, outcome in outcomes.items() if name in test}
                assert selected and set(selected.values()) == {"passed"}, (case.mutant, selected)


def built_on_memory_world(backend: WorldBackend) -> bool:
    return isinstance(backend.factory, type) and issubclass(backend.factory, MemoryWorld)


def test_certification_fails_on_a_missing_must_capability(suite: SuiteRunner) -> None:
    proc, report = suite.result(CERTIFY)
    assert proc.returncode == 1
    assert "certification: MUST rule HK-1 cannot be checked" in proc.stdout
    assert "multi_process" in proc.stdout
    assert report["rules"]["HK-1"]["status"] == "fail"
