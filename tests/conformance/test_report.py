"""The per-rule report: a state machine's failure is charged to the rules its message names."""

from __future__ import annotations

import pytest

from conformance.markers import rule_of
from conformance.report import RuleResults


def _failed(nodeid: str, message: str) -> pytest.TestReport:
    return pytest.TestReport(nodeid, ("x.py", 0, "x"), {}, "failed", f"E   {message}", "call")


def test_a_failing_state_machine_charges_the_rules_its_check_names() -> None:
    results = RuleResults()
    nodeid = "test_models.py::test_MB1_events_hooks_waits_agree_with_oracle__MUST"
    ref = rule_of(nodeid.rsplit("::", 1)[-1])
    assert ref is not None
    results.add(ref, _failed(nodeid, "AssertionError: HK-1/HK-2: hook_created: expected EntityConflictError"))
    rules = results.by_rule()
    assert {rule: info["status"] for rule, info in rules.items()} == {"MB-1": "fail", "HK-1": "fail", "HK-2": "fail"}
    assert rules["HK-2"]["tests"][0]["id"] == nodeid


def test_a_failure_without_a_rule_id_stays_with_the_machine() -> None:
    results = RuleResults()
    nodeid = "test_models.py::test_MB2_queue_history_is_at_least_once__MUST"
    ref = rule_of(nodeid.rsplit("::", 1)[-1])
    assert ref is not None
    results.add(ref, _failed(nodeid, "AssertionError: condition not reached in 10s"))
    assert list(results.by_rule()) == ["MB-2"]


def test_only_state_machines_charge_other_rules() -> None:
    results = RuleResults()
    nodeid = "test_events.py::test_EV2_create_returns_event_and_entity__MUST"
    ref = rule_of(nodeid.rsplit("::", 1)[-1])
    assert ref is not None
    results.add(ref, _failed(nodeid, "AssertionError: EV-8: not this test's rule"))
    assert list(results.by_rule()) == ["EV-2"]
