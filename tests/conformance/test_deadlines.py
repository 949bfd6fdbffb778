"""A hung World gets its verdict: a stuck call fails at its deadline, and at once after that."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conformance.deadlines import CallDeadlineExceeded, Deadlines, WorldHung
from worlds_sdk.models import EventRequest

from ..mutants.suite_runs import SuiteRun, SuiteRunner


class _Events:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def create(self, run_id: str | None, request: EventRequest) -> str:
        self.calls.append(request.event_type)
        if request.event_type == "step_completed":
            await asyncio.Event().wait()
        return request.event_type


class _World:
    def __init__(self) -> None:
        self.events = _Events()


def test_a_hung_call_fails_at_its_deadline_then_at_once() -> None:
    async def main() -> None:
        inner = _World()
        world: Any = Deadlines(deadline=0.2).wrap(inner)
        with pytest.raises(CallDeadlineExceeded, match=r"events.create\(step_completed\) did not return"):
            await world.events.create("r", EventRequest(event_type="step_completed", correlation_id="s"))
        with pytest.raises(WorldHung, match="hung earlier in this run"):
            await world.events.create("r", EventRequest(event_type="step_completed", correlation_id="s"))
        assert inner.events.calls == ["step_completed"], "a call that hung is not made again"
        # the same method for another event still gets its whole deadline, and works
        assert await world.events.create("r", EventRequest(event_type="run_cancelled")) == "run_cancelled"

    asyncio.run(main())


def test_suite_fails_the_tests_of_a_hung_call_and_passes_the_rest(tmp_path: Path) -> None:
    runner = SuiteRunner(tmp_path, jobs=1)
    try:
        selection = (
            "test_EV8_step_lifecycle or test_EV8_terminal_step_refuses_events or test_EV9 or test_EV3_world_mints"
        )
        proc, report = runner.result(SuiteRun("tests.mutants.hung_worlds:hangs_on_completion", selection))
    finally:
        runner.close()
    assert proc.returncode == 1, proc.stdout[-3000:]
    outcomes = {t["id"].rsplit("::", 1)[-1]: t for rule in report["rules"].values() for t in rule["tests"]}
    assert outcomes["test_EV3_world_mints_run_ids__MUST"]["outcome"] == "passed"
    hung = {name: t["reason"] for name, t in outcomes.items() if not name.startswith("test_EV3")}
    assert len(hung) == 4 and all("the World hung" in reason for reason in hung.values()), hung
    assert sum("not called again" in reason for reason in hung.values()) >= 2, hung
