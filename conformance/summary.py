"""Reports for people and badges: ``worlds report`` renders per-rule JSON reports.

Markdown fit for ``$GITHUB_STEP_SUMMARY`` (one report: every rule with its level,
status, test counts and the first failure or skip reason; several: the Worlds
side by side, one column each) and a shields.io endpoint badge
(``conformance: 31/31 MUST``). The report format itself belongs to
:mod:`conformance.report`; this module only reads :class:`~conformance.report.Report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .report import Report, _rule_sort_key

_MARK = {"pass": "✅ pass", "partial": "🟡 partial", "fail": "❌ fail", "skip": "⚪ skip"}


def markdown(reports: Sequence[Report]) -> str:
    """One report as a rule table, several side by side; ends with a newline."""
    if len(reports) == 1:
        return _single(reports[0])
    return _side_by_side(reports)


def badge(report: Report) -> dict[str, Any]:
    """A shields.io endpoint: MUST rules passed out of those reported; green only if all passed in a complete run."""
    passed, total = report.must
    complete = report.complete and passed == total
    if any(v.status == "fail" for v in report.rules.values() if v.level == "MUST"):
        color = "red"
    else:
        color = "brightgreen" if complete else "yellow"
    message = f"{passed}/{total} MUST" + (" (certified)" if report.certify and complete else "")
    return {"schemaVersion": 1, "label": "conformance", "message": message, "color": color}


def _headline(report: Report) -> str:
    passed, total = report.must
    facts = [f"spec {report.spec_version}", f"package {report.package_version}"]
    if report.certify:
        facts.append("certification run")
    return f"**{report.backend_id}** ({', '.join(facts)}): {passed}/{total} MUST rules pass"


def _warnings(report: Report) -> list[str]:
    notes = []
    if not report.complete:
        notes.append(f"> ⚠️ `{report.backend_id}`: incomplete run — not every test of the suite ran.")
    return notes


def _single(report: Report) -> str:
    lines = [f"## World conformance: {report.backend_id}", "", _headline(report), "", *_warnings(report)]
    if lines[-1]:
        lines.append("")
    lines += ["| rule | level | status | tests | first failure or skip reason |", "|---|---|---|---|---|"]
    for verdict in report.rules.values():
        tests = ", ".join(f"{n} {outcome}" for outcome, n in sorted(verdict.outcomes.items()))
        lines.append(
            f"| {verdict.rule} | {verdict.level} | {_MARK[verdict.status]} | {tests} | {_cell(verdict.reason)} |"
        )
    return "\n".join(lines) + "\n"


def _side_by_side(reports: Sequence[Report]) -> str:
    lines = ["## World conformance", ""]
    lines += [f"- {_headline(report)}" for report in reports]
    lines.append("")
    warnings = [note for report in reports for note in _warnings(report)]
    if warnings:
        lines += [*warnings, ""]
    names = " | ".join(report.backend_id for report in reports)
    lines += [f"| rule | level | {names} |", "|---|---|" + "---|" * len(reports)]
    rules = sorted({rule for report in reports for rule in report.rules}, key=_rule_sort_key)
    for rule in rules:
        verdicts = [report.rules.get(rule) for report in reports]
        level = next(v.level for v in verdicts if v is not None)
        cells = " | ".join("—" if v is None else _MARK[v.status] for v in verdicts)
        lines.append(f"| {rule} | {level} | {cells} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.replace("|", "\\|").split())[:200]
