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
            counts: defaultdict[str, int] = defaultdict(int)
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
    """The first ``E`` line of a failure; for an exception group (no ``E`` lines), its first member's error."""
    lines = [line[1:] for line in text.splitlines() if line.startswith("E ")]
    lines += [line.strip().lstrip("|") for line in text.splitlines() if _GROUP_MEMBER_ERROR.match(line)]
    return (lines[0].strip() if lines else text.strip().splitlines()[-1] if text.strip() else "")[:300]


_GROUP_MEMBER_ERROR = re.compile(r"^\s*\|\s*[A-Za-z_][\w.]*(Error|Exception|Failure)\b")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


class ReportError(ValueError):
    """A file is not a per-rule report this version can read (says which file and what is wrong)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleVerdict:
    """One rule's verdict as the JSON report has it."""

    rule: str
    level: str
    status: str
    outcomes: dict[str, int]
    reason: str
    """The first failed test's first error line, else the first skip reason, else empty."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """A ``--worlds-report`` file read back: what :meth:`RuleResults.to_json` wrote."""

    world: str
    backend_id: str
    package_version: str
    spec_version: int
    certify: bool
    complete: bool
    exitstatus: int | None
    rules: dict[str, RuleVerdict]

    @property
    def must(self) -> tuple[int, int]:
        """(MUST rules that passed, MUST rules in the report): a partial or skipped MUST rule did not pass."""
        must = [v for v in self.rules.values() if v.level == "MUST"]
        return sum(1 for v in must if v.status == "pass"), len(must)

    @classmethod
    def load(cls, path: str | Path) -> Report:
        """Read a report file; :class:`ReportError` if it is not JSON or not a report, ``OSError`` if unreadable."""
        text = Path(path).read_text(encoding="utf-8")
        try:
            return cls.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ReportError(f"{path}: not a worlds conformance report ({what})") from None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        rules = {}
        for rule, info in data["rules"].items():
            tests = info["tests"]
            outcomes: dict[str, int] = defaultdict(int)
            for test in tests:
                outcomes[test["outcome"]] += 1
            reasons = [t["reason"] for t in tests if t["outcome"] == "failed" and t["reason"]]
            reasons += [t["reason"] for t in tests if t["outcome"] == "skipped" and t["reason"]]
            if info["status"] not in STATUSES:
                raise ValueError(f"rule {rule}: unknown status {info['status']!r}")
            rules[rule] = RuleVerdict(
                rule=rule,
                level=str(info["level"]),
                status=info["status"],
                outcomes=dict(outcomes),
                reason=reasons[0] if reasons else "",
            )
        return cls(
            world=str(data["world"]),
            backend_id=str(data["backend_id"]),
            package_version=str(data["package_version"]),
            spec_version=int(data["spec_version"]),
            certify=bool(data["certify"]),
            complete=bool(data.get("complete", False)),
            exitstatus=data.get("exitstatus"),
            rules=rules,
        )
