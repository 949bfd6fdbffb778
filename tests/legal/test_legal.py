"""The suite passes every legal variant: no false fail on a World that uses a granted freedom.

The mutant meta-tests show every check can fail; these show the checks do not
fail what docs/spec.md allows. A variant built on the in-memory World runs the
whole suite (a few seconds); one built on the local World runs the tests its
freedom can touch (the queue's, with several processes), or the whole suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import pytest

from worlds_sdk.backend import WorldBackend

from ..mutants.suite_runs import SuiteRun, SuiteRunner
from . import worlds

QUEUE_TESTS = "Q1 or Q2 or Q3 or Q4 or Q5 or Q6 or MB2 or PL1"
JOBS = 3


class Variant(NamedTuple):
    name: str
    freedom: str
    """The sentence of docs/spec.md that grants it."""
    selection: str | None = None
    """A ``-k`` expression; ``None`` runs the whole suite."""
    local: bool = False
    """Built on the local World: a longer run, started first."""

    @property
    def run(self) -> SuiteRun:
        return SuiteRun(f"tests.legal.worlds:{self.name}", self.selection, slow=self.local)


VARIANTS = [
    Variant("delivers_every_message_twice", "Q-1: duplicates are allowed", QUEUE_TESTS, local=True),
    Variant("redelivers_after_ack", "Q-1: duplicates are allowed", QUEUE_TESTS, local=True),
    Variant("delivers_late", "Q-4: never delivered early"),
    Variant("short_pages", "§1: limit is an upper bound"),
    Variant("hooks_newest_first", "§1: hooks.list has no fixed default order"),
    Variant("coarse_clock", "§2: created_at never decreases (equal is allowed)"),
    Variant("slow", "nothing in the contract is timed", local=True),
]


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRunner]:
    runner = SuiteRunner(tmp_path_factory.mktemp("legal-runs"), jobs=JOBS)
    runner.start([v.run for v in VARIANTS])
    yield runner
    runner.close()


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_suite_passes_legal_variant(variant: Variant, suite: SuiteRunner) -> None:
    assert isinstance(getattr(worlds, variant.name), WorldBackend)
    proc, report = suite.result(variant.run)
    failed = {
        t["id"]: t["reason"]
        for rule in report.get("rules", {}).values()
        for t in rule["tests"]
        if t["outcome"] != "passed"
    }
    assert proc.returncode == 0, (failed, proc.stdout[-3000:])
    assert report["summary"]["fail"] == 0
    # a skip is allowed only for a capability the variant does not declare, or an optional surface
    allowed = ("does not declare capability", "does not implement the optional")
    assert all(any(a in reason for a in allowed) for reason in failed.values()), failed
    ran = sum(t["outcome"] == "passed" for rule in report["rules"].values() for t in rule["tests"])
    assert ran >= (15 if variant.selection else 75), "the variant ran too few tests to count"
