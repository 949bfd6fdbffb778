"""Per-rule results: the JSON report (``--worlds-report``) and the terminal matrix.

A rule passes when at least one of its tests passed and none failed, fails when
any failed, is ``error`` when a test of it could not run because setup failed (a
service down, a bad sandbox setting: no verdict either way), and is skipped when
all its tests were skipped (the reasons say
which capability or spec version was missing). A CI gate reads the JSON; a
person reads the matrix.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .markers import RuleRef, rule_of
from .selection import SelectedWorld

_RANK = {"failed": 3, "error": 2, "passed": 1, "skipped": 0}
STATUSES = ("pass", "partial", "fail", "error", "skip")
_VERDICT = {"passed": "pass", "failed": "fail", "error": "error", "skipped": "skip"}


@dataclass
class TestRecord:
    nodeid: str
    rule: str
    level: str
    outcome: str = "passed"
    duration: float = 0.0
    reason: str = ""


@dataclass
class RuleResults:
    """Collects test outcomes by rule as pytest reports them."""

    records: dict[str, TestRecord] = field(default_factory=dict)

    def add(self, ref: RuleRef, report: pytest.TestReport) -> None:
        rec = self.records.setdefault(report.nodeid, TestRecord(report.nodeid, _entry(ref), ref.level))
        rec.duration += report.duration
        if report.failed:
            rec.outcome = "failed"
            rec.reason = _first_line(report.longreprtext)
            for rule in _named_rules(rec.reason) if ref.rule.startswith("MB-") else ():
                # a state machine's failure names the rule its check broke: charge that rule too
                self.records[f"{report.nodeid} -> {rule}"] = TestRecord(
                    report.nodeid, rule, "MUST", "failed", rec.duration, rec.reason
                )
        elif report.skipped and rec.outcome != "failed":
            rec.outcome = "skipped"
            rec.reason = _skip_reason(report)

    def not_run(self, nodeids: set[str], reason: str) -> None:
        """Record every test of ``nodeids`` that has no outcome as ``error``: setup stopped the run first."""
        for nodeid in sorted(nodeids - self.records.keys()):
            ref = rule_of(nodeid.rsplit("::", 1)[-1])
            if ref is not None:
                self.records[nodeid] = TestRecord(nodeid, _entry(ref), ref.level, outcome="error", reason=reason)

    def by_rule(self) -> dict[str, dict[str, Any]]:
        grouped: dict[str, list[TestRecord]] = defaultdict(list)
        for rec in self.records.values():
            grouped[rec.rule].append(rec)
        out: dict[str, dict[str, Any]] = {}
        for rule in sorted(grouped, key=_rule_sort_key):
            recs = grouped[rule]
            outcomes = {r.outcome for r in recs}
            status = max(outcomes, key=lambda o: _RANK[o])
            verdict = _VERDICT[status]
            if verdict == "pass" and "skipped" in outcomes:
                verdict = "partial"  # some of the rule's tests were not run: say so, never a plain pass
            out[rule] = {
                "status": verdict,
                "level": min((r.level for r in recs), key=("MUST", "SHOULD", "MAY").index),
                "tests": [
                    {"id": r.nodeid, "outcome": r.outcome, "duration": round(r.duration, 4), "reason": r.reason}
                    for r in recs
                ],
                "duration": round(sum(r.duration for r in recs), 4),
            }
        return out

    def to_json(self, selected: SelectedWorld, **run: Any) -> dict[str, Any]:
        """The report; ``run`` adds facts about the session (exit status, completeness, …)."""
        rules = self.by_rule()
        return {
            "world": selected.reference,
            "backend_id": selected.backend.id,
            "package_version": selected.package_version,
            "spec_version": selected.spec_version,
            "capabilities": sorted(selected.capabilities),
            "certify": selected.certify,
            "hypothesis_profile": selected.hypothesis_profile,
            **run,
            "summary": {s: sum(1 for r in rules.values() if r["status"] == s) for s in STATUSES},
            "rules": rules,
        }

    def write(self, path: str | Path, selected: SelectedWorld, **run: Any) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_json(selected, **run), indent=2) + "\n")

    def matrix(self) -> list[str]:
        rules = self.by_rule()
        if not rules:
            return []
        lines = [f"{'rule':<13} {'level':<7} {'status':<7} tests", f"{'-' * 13} {'-' * 7} {'-' * 7} -----"]
        for rule, info in rules.items():
            counts = defaultdict(int)
            for t in info["tests"]:
                counts[t["outcome"]] += 1
            detail = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
            lines.append(f"{rule:<13} {info['level']:<7} {info['status'].upper():<7} {detail}")
        return lines


_NAMED = re.compile(r"^(?:\w+: )?((?:[A-Z]+-\d+)(?:/[A-Z]+-\d+)*): ")


def _named_rules(reason: str) -> list[str]:
    """The rules a failure message starts with: ``AssertionError: HK-1/HK-2: ...`` names HK-1 and HK-2."""
    m = _NAMED.match(reason)
    return m.group(1).split("/") if m else []


def _entry(ref: RuleRef) -> str:
    """A SHOULD or MAY check is its own entry (``EV-11/SHOULD``), so it never decides a MUST rule's verdict."""
    return ref.rule if ref.level == "MUST" else f"{ref.rule}/{ref.level}"


def _rule_sort_key(rule: str) -> tuple[str, int, str]:
    rule, _, level = rule.partition("/")
    family, _, number = rule.partition("-")
    return family, int(number) if number.isdigit() else 0, level


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    return (lines[0][1:].strip() if lines else text.strip().splitlines()[-1] if text.strip() else "")[:300]


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)
