"""A World that ignores any read parameter is caught by a MUST test that pins it.

Each mutant of tests/mutants/ignored_parameters.py runs the suite's pinning
test(s) of its parameter (``@pins`` declarations); a MUST test among them must
fail, and the unbroken in-memory World passes the same tests
(``test_unbroken_memory_world_passes_the_suite`` runs them all).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.markers import rule_of

from ..conformance.parameters import pins
from .ignored_parameters import mutants
from .suite_runs import SuiteRun, SuiteRunner

JOBS = 3


def _run(name: str) -> SuiteRun:
    tests = pins()[mutants()[name]]
    return SuiteRun(f"tests.mutants.ignored_parameters:{name}", " or ".join(tests))


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRunner]:
    runner = SuiteRunner(tmp_path_factory.mktemp("ignored-parameter-runs"), jobs=JOBS)
    runner.start([_run(name) for name in mutants()])
    yield runner
    runner.close()


def test_every_non_key_parameter_has_a_mutant() -> None:
    assert ("runs.list", "status") in mutants().values()
    assert len(mutants()) >= 30


@pytest.mark.parametrize("name", sorted(mutants()))
def test_a_must_test_catches_a_world_ignoring(name: str, suite: SuiteRunner) -> None:
    proc, report = suite.result(_run(name))
    assert proc.returncode == 1, proc.stdout[-3000:]
    pinning = set(pins()[mutants()[name]])
    failed = {
        t["id"].rsplit("::", 1)[-1]: t["reason"]
        for rule in report["rules"].values()
        for t in rule["tests"]
        if t["outcome"] == "failed"
    }
    caught = [t for t in failed if t in pinning and (ref := rule_of(t)) is not None and ref.level == "MUST"]
    assert caught, f"{mutants()[name]} ignored, yet no MUST test pinning it failed: {failed}"
    # a check that failed, not a mutant that crashed
    assert all(any(k in failed[t] for k in ("AssertionError", "DID NOT RAISE")) for t in caught), failed
