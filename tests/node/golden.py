"""Per-rule verdicts of npm Worlds against a recorded golden file (the ``conformance-npm`` tox env).

The official npm Worlds fail rules today; CI must stay green while they do and
turn red when any verdict changes -- a rule newly failing, or newly passing
(then the golden file, and docs/verdicts.md, are updated on purpose).

    python tests/node/golden.py check tests/node/golden-verdicts.json REPORT.json...
    python tests/node/golden.py write tests/node/golden-verdicts.json REPORT.json...
    python tests/node/golden.py matrix REPORT.json...      # the rule x World table of docs/verdicts.md

``write`` records single verdicts; a rule whose verdict depends on a race the
suite catches only sometimes is then edited by hand into the list of verdicts it
has been seen to give (``"EV-1": ["fail", "partial"]``), with the evidence in
docs/verdicts.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {rule: str(result["status"]) for rule, result in sorted(report["rules"].items())}


def read_reports(paths: list[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for path in paths:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        if not report.get("complete", False) or not report.get("rules"):
            raise SystemExit(f"{path}: the run did not complete; no verdicts to compare")
        found[str(report["world"])] = verdicts(report)
    return found


Golden = dict[str, dict[str, str | list[str]]]
"""World -> rule -> verdict; a list is the verdicts a race may give (a race the suite catches only sometimes)."""


def differences(golden: Golden, found: dict[str, dict[str, str]]) -> list[str]:
    lines = []
    for world, rules in found.items():
        expected = golden.get(world)
        if expected is None:
            lines.append(f"{world}: no golden verdicts recorded")
            continue
        for rule in sorted(set(expected) | set(rules)):
            allowed = expected.get(rule, "absent")
            now = rules.get(rule, "absent")
            if now not in (allowed if isinstance(allowed, list) else [allowed]):
                shown = " or ".join(allowed) if isinstance(allowed, list) else allowed
                lines.append(f"{world} {rule}: golden {shown}, now {now}")
    return lines


def matrix(found: dict[str, dict[str, str]]) -> list[str]:
    """A Markdown table: one row per rule, one column per World, in the order given."""
    rules = sorted({rule for verdict in found.values() for rule in verdict}, key=_rule_order)
    lines = ["| rule | " + " | ".join(f"`{world}`" for world in found) + " |", "|---" * (len(found) + 1) + "|"]
    for rule in rules:
        cells = [found[world].get(rule, "-").upper() for world in found]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    return lines


def _rule_order(rule: str) -> tuple[str, int, str]:
    family, _, rest = rule.partition("-")
    number, _, level = rest.partition("/")
    return (family, int(number) if number.isdigit() else 0, level)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "matrix":
        print("\n".join(matrix(read_reports(argv[1:]))))
        return 0
    if len(argv) < 3 or argv[0] not in ("check", "write"):
        print(__doc__, file=sys.stderr)
        return 2
    command, golden_path, reports = argv[0], Path(argv[1]), argv[2:]
    found = read_reports(reports)
    if command == "write":
        golden_path.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{golden_path}: recorded {sum(len(r) for r in found.values())} verdicts of {len(found)} Worlds")
        return 0
    golden = json.loads(golden_path.read_text(encoding="utf-8"))
    changed = differences(golden, found)
    for line in changed:
        print(f"verdict changed: {line}")
    if not changed:
        print(f"verdicts unchanged: {', '.join(found)} ({sum(len(r) for r in found.values())} rules)")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
