"""MB-1..MB-3: model-based tests, the World against the SDK's rules as oracle."""

from __future__ import annotations

from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from conformance import WorldHarness, spec
from conformance.machines import events_machine, queue_machine, streams_machine

pytestmark = spec(">=2")


@spec(">=3")
def test_MB1_events_hooks_waits_agree_with_oracle__MUST(world: WorldHarness) -> None:
    run_state_machine_as_test(events_machine(world), settings=settings())


def test_MB2_queue_history_is_at_least_once__MUST(world: WorldHarness) -> None:
    # No shrinking: every failing queue example waits out a delivery deadline, and the
    # failure message already carries the whole judged history.
    no_shrink = [Phase.explicit, Phase.reuse, Phase.generate]
    run_state_machine_as_test(
        queue_machine(world), settings=settings(settings(), stateful_step_count=12, phases=no_shrink)
    )


@spec(">=3")
def test_MB3_streams_agree_with_list_model__MUST(world: WorldHarness) -> None:
    run_state_machine_as_test(streams_machine(world), settings=settings())
