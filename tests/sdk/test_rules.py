"""The rules oracle (``worlds_sdk.rules``) pinned to the event table of docs/spec.md §3.

The conformance suite compares every World against ``decide``, so ``decide`` itself is
checked here against literal expectations, not against itself: each case gives a
snapshot and a request and the *whole* outcome -- the exact error type and status, or
the exact ``Effects`` (events in append order with their data, entity states, the
disposal flags). The clock is fixed and ids come from a counting minter, so every
expected value is written out. Case ids start with the rule they pin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from worlds_sdk import events as ev
from worlds_sdk.errors import (
    EntityConflictError,
    HookNotFoundError,
    RunExpiredError,
    RunNotSupportedError,
    StepNotFoundError,
    TooEarlyError,
    ValidationError,
    WaitNotFoundError,
    WorkflowRunNotFoundError,
    WorkflowWorldError,
)
from worlds_sdk.models import Event, EventRequest, EventResult, Hook, Run, Step, StructuredError, Wait
from worlds_sdk.rules import (
    Effects,
    Snapshot,
    decide,
    needs_hook,
    needs_step,
    needs_wait,
    requested_token,
    resolve_run_id,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(minutes=10)
WORLD = 3
RUN_ID = "wrun_01JWMHN2G00000000000000000"
OTHER_RUN_ID = "wrun_01JWMHN2G00000000000000001"
STEP_ID = "step_01"
HOOK_ID = "hook_01"
WAIT_ID = "wait_01"
INPUT = b"\x00\x01in\xff"  # payloads are opaque bytes: NUL and invalid UTF-8 included
OUTPUT = b"out\x00"
RESULT = b"res\xff"
RETRY_AT = NOW + timedelta(seconds=30)
RESUME_AT = NOW + timedelta(hours=1)

TERMINAL_RUNS = ("completed", "failed", "cancelled")
LIVE_RUNS = ("pending", "running")
STEP_EVENTS_ON_EXISTING = (ev.STEP_STARTED, ev.STEP_COMPLETED, ev.STEP_FAILED, ev.STEP_RETRYING)
CLIENT_EVENT_TYPES = tuple(t for t in ev.EVENT_TYPES if t not in ev.WORLD_ONLY_EVENT_TYPES)

BOOTSTRAP = {"deployment_id": "dpl_1", "workflow_name": "wf", "input": INPUT}
DATA: dict[str, Mapping[str, Any] | None] = {
    ev.RUN_CREATED: BOOTSTRAP,
    ev.RUN_STARTED: None,
    ev.RUN_COMPLETED: {"output": OUTPUT},
    ev.RUN_FAILED: {"error": {"message": "boom", "stack": "at wf"}},
    ev.RUN_CANCELLED: None,
    ev.STEP_CREATED: {"step_name": "add", "input": INPUT},
    ev.STEP_STARTED: None,
    ev.STEP_COMPLETED: {"result": RESULT},
    ev.STEP_FAILED: {"error": "fatal", "stack": "at add"},
    ev.STEP_RETRYING: {"error": {"message": "flaky"}, "retry_after": RETRY_AT},
    ev.HOOK_CREATED: {"token": "tok", "metadata": b"meta"},
    ev.HOOK_RECEIVED: {"payload": b"pay\x00"},
    ev.HOOK_DISPOSED: None,
    ev.WAIT_CREATED: {"resume_at": RESUME_AT},
    ev.WAIT_COMPLETED: None,
}
CORRELATION = {
    **dict.fromkeys(ev.STEP_EVENT_TYPES, STEP_ID),
    **dict.fromkeys(ev.HOOK_EVENT_TYPES, HOOK_ID),
    **dict.fromkeys(ev.WAIT_EVENT_TYPES, WAIT_ID),
}
_DEFAULT: Any = object()


class CountingMint:
    """Deterministic ids: ``evnt_1``, ``evnt_2`` … in minting order, so order is visible."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"


# -- building inputs and expectations ------------------------------------------


def request(
    event_type: str, data: Mapping[str, Any] | None = _DEFAULT, *, spec_version: int | None = None
) -> EventRequest:
    return EventRequest(
        event_type=event_type,
        correlation_id=CORRELATION.get(event_type),
        event_data=DATA[event_type] if data is _DEFAULT else data,
        spec_version=spec_version,
    )


def event(
    event_type: str,
    data: Mapping[str, Any] | None = _DEFAULT,
    *,
    n: int = 1,
    correlation_id: str | None = _DEFAULT,
    spec_version: int = WORLD,
) -> Event:
    """The event ``decide`` should append as the ``n``-th id it mints."""
    return Event(
        run_id=RUN_ID,
        event_id=f"evnt_{n}",
        event_type=event_type,
        correlation_id=CORRELATION.get(event_type) if correlation_id is _DEFAULT else correlation_id,
        event_data=DATA[event_type] if data is _DEFAULT else data,
        spec_version=spec_version,
        created_at=NOW,
    )


def run(status: str = "running", **changes: Any) -> Run:
    """A stored run in ``status`` with the fields that status implies."""
    implied: dict[str, dict[str, Any]] = {
        "pending": {},
        "running": {"started_at": EARLIER},
        "completed": {"started_at": EARLIER, "output": OUTPUT, "completed_at": EARLIER},
        "failed": {"started_at": EARLIER, "error": StructuredError(message="boom"), "completed_at": EARLIER},
        "cancelled": {"completed_at": EARLIER},
    }
    fields: dict[str, Any] = {
        "run_id": RUN_ID,
        "status": status,
        "deployment_id": "dpl_1",
        "workflow_name": "wf",
        "spec_version": WORLD,
        "input": INPUT,
        "created_at": EARLIER,
        "updated_at": EARLIER,
    }
    return Run(**(fields | implied[status] | changes))


def step(status: str = "pending", **changes: Any) -> Step:
    implied: dict[str, dict[str, Any]] = {
        "pending": {},
        "running": {"attempt": 1, "started_at": EARLIER},
        "completed": {"attempt": 1, "started_at": EARLIER, "output": RESULT, "completed_at": EARLIER},
        "failed": {"attempt": 1, "started_at": EARLIER, "error": StructuredError(message="x"), "completed_at": EARLIER},
    }
    fields: dict[str, Any] = {
        "run_id": RUN_ID,
        "step_id": STEP_ID,
        "step_name": "add",
        "status": status,
        "input": INPUT,
        "attempt": 0,
        "spec_version": WORLD,
        "created_at": EARLIER,
        "updated_at": EARLIER,
    }
    return Step(**(fields | implied[status] | changes))


def hook(**changes: Any) -> Hook:
    fields: dict[str, Any] = {
        "hook_id": HOOK_ID,
        "run_id": RUN_ID,
        "token": "tok",
        "metadata": b"meta",
        "spec_version": WORLD,
        "created_at": EARLIER,
    }
    return Hook(**(fields | changes))


def wait(status: str = "waiting") -> Wait:
    done = {"completed_at": EARLIER} if status == "completed" else {}
    return Wait(
        run_id=RUN_ID,
        wait_id=WAIT_ID,
        status=status,  # type: ignore[arg-type]
        resume_at=RESUME_AT,
        created_at=EARLIER,
        updated_at=EARLIER,
        **done,
    )


def moved(entity: Any, **changes: Any) -> Any:
    """``entity`` after a transition at NOW."""
    return dataclasses.replace(entity, updated_at=NOW, **changes)


def run_transition(after: Run, event_type: str, *, dispose: bool) -> Effects:
    e = event(event_type)
    return Effects(events=(e,), run=after, dispose_run_children=dispose, result=EventResult(event=e, run=after))


def step_transition(after: Step, event_type: str, data: Mapping[str, Any] | None = _DEFAULT) -> Effects:
    e = event(event_type, data)
    return Effects(events=(e,), step=after, result=EventResult(event=e, step=after))


def wait_transition(after: Wait, event_type: str) -> Effects:
    e = event(event_type)
    return Effects(events=(e,), wait=after, result=EventResult(event=e, wait=after))


@dataclass(frozen=True)
class Raises:
    """An expected failure: the exact error class, its status, and (425 only) retry_after."""

    error: type[WorkflowWorldError]
    status: int
    retry_after: float | None = None


CONFLICT = Raises(EntityConflictError, 409)
EXPIRED = Raises(RunExpiredError, 410)
RUN_NOT_FOUND = Raises(WorkflowRunNotFoundError, 404)
STEP_NOT_FOUND = Raises(StepNotFoundError, 404)
HOOK_NOT_FOUND = Raises(HookNotFoundError, 404)
WAIT_NOT_FOUND = Raises(WaitNotFoundError, 404)
NOT_SUPPORTED = Raises(RunNotSupportedError, 400)


def case(case_id: str, req: EventRequest, snapshot: Snapshot, expect: Effects | Raises) -> Any:
    return pytest.param(req, snapshot, expect, id=case_id)


def check(req: EventRequest, snapshot: Snapshot, expect: Effects | Raises) -> None:
    if isinstance(expect, Raises):
        with pytest.raises(WorkflowWorldError) as info:
            decide(RUN_ID, req, snapshot, now=NOW, world_spec_version=WORLD, mint=CountingMint())
        assert type(info.value) is expect.error
        assert info.value.status == expect.status
        if expect.retry_after is not None:
            assert info.value.retry_after == expect.retry_after
    else:
        assert decide(RUN_ID, req, snapshot, now=NOW, world_spec_version=WORLD, mint=CountingMint()) == expect


# -- runs ------------------------------------------------------------------------


def run_cases() -> Iterator[Any]:
    created = Run(
        run_id=RUN_ID,
        status="pending",
        deployment_id="dpl_1",
        workflow_name="wf",
        spec_version=WORLD,
        input=INPUT,
        created_at=NOW,
        updated_at=NOW,
    )
    e = event(ev.RUN_CREATED)
    yield case(
        "EV-2 run_created creates a pending run",
        request(ev.RUN_CREATED),
        Snapshot(run=None),
        Effects(events=(e,), run=created, result=EventResult(event=e, run=created)),
    )
    ctx = {"tenant": "t1", "trace": [1, 2]}
    full = BOOTSTRAP | {"execution_context": ctx}
    rich = dataclasses.replace(created, spec_version=2, execution_context=ctx)
    e = event(ev.RUN_CREATED, full, spec_version=2, correlation_id=None)
    yield case(
        "EV-2 run_created keeps execution_context and the request spec_version, drops unknown keys",
        EventRequest(
            event_type=ev.RUN_CREATED, correlation_id="ignored", event_data=full | {"note": "x"}, spec_version=2
        ),
        Snapshot(run=None),
        Effects(events=(e,), run=rich, result=EventResult(event=e, run=rich)),
    )
    for status in (*LIVE_RUNS, *TERMINAL_RUNS):
        yield case(
            f"EV-4 run_created on {status} run -> 409", request(ev.RUN_CREATED), Snapshot(run=run(status)), CONFLICT
        )
    yield case(
        "EV-10 run_created with spec_version above the world's -> RunNotSupportedError",
        request(ev.RUN_CREATED, spec_version=WORLD + 1),
        Snapshot(run=None),
        NOT_SUPPORTED,
    )

    # run_started (EV-5, EV-6)
    pending = run("pending")
    yield case(
        "EV-5 run_started on pending run -> running, started_at set",
        request(ev.RUN_STARTED),
        Snapshot(run=pending),
        run_transition(moved(pending, status="running", started_at=NOW), ev.RUN_STARTED, dispose=False),
    )
    seeded = run("pending", started_at=EARLIER)
    yield case(
        "EV-5 run_started never changes an existing started_at",
        request(ev.RUN_STARTED),
        Snapshot(run=seeded),
        run_transition(moved(seeded, status="running"), ev.RUN_STARTED, dispose=False),
    )
    running = run("running")
    for label, data in (("", None), (" with bootstrap data", BOOTSTRAP)):
        yield case(
            f"EV-5 run_started on running run{label} -> run returned, no event",
            request(ev.RUN_STARTED, data),
            Snapshot(run=running),
            Effects(events=(), result=EventResult(event=None, run=running)),
        )
    for status in TERMINAL_RUNS:
        for label, data in (("", None), (" with bootstrap data", BOOTSTRAP)):
            yield case(
                f"EV-5 run_started on {status} run{label} -> 410",
                request(ev.RUN_STARTED, data),
                Snapshot(run=run(status)),
                EXPIRED,
            )

    boot = BOOTSTRAP | {"execution_context": ctx, "extra": 1}
    started = dataclasses.replace(created, status="running", started_at=NOW, execution_context=ctx)
    synthetic = event(ev.RUN_CREATED, BOOTSTRAP | {"execution_context": ctx}, n=1)
    start = event(ev.RUN_STARTED, boot, n=2)
    yield case(
        "EV-6 run_started with bootstrap on missing run -> run + synthetic run_created before run_started",
        request(ev.RUN_STARTED, boot),
        Snapshot(run=None),
        Effects(events=(synthetic, start), run=started, result=EventResult(event=start, run=started)),
    )
    started_v2 = dataclasses.replace(started, spec_version=2, execution_context=None)
    synthetic = event(ev.RUN_CREATED, BOOTSTRAP, n=1, spec_version=2)
    start = event(ev.RUN_STARTED, BOOTSTRAP, n=2, spec_version=2)
    yield case(
        "EV-6 resilient start takes the request spec_version",
        request(ev.RUN_STARTED, BOOTSTRAP, spec_version=2),
        Snapshot(run=None),
        Effects(events=(synthetic, start), run=started_v2, result=EventResult(event=start, run=started_v2)),
    )
    yield case(
        "EV-6 run_started with bootstrap on existing pending run -> plain start, no synthetic event",
        request(ev.RUN_STARTED, BOOTSTRAP),
        Snapshot(run=pending),
        Effects(
            events=(event(ev.RUN_STARTED, BOOTSTRAP),),
            run=moved(pending, status="running", started_at=NOW),
            result=EventResult(
                event=event(ev.RUN_STARTED, BOOTSTRAP), run=moved(pending, status="running", started_at=NOW)
            ),
        ),
    )
    yield case(
        "EV-6 run_started on missing run without data -> WorkflowRunNotFoundError",
        request(ev.RUN_STARTED),
        Snapshot(run=None),
        RUN_NOT_FOUND,
    )
    for key in BOOTSTRAP:
        partial = {k: v for k, v in BOOTSTRAP.items() if k != key}
        yield case(
            f"EV-6 run_started on missing run with bootstrap lacking {key} -> WorkflowRunNotFoundError",
            request(ev.RUN_STARTED, partial),
            Snapshot(run=None),
            RUN_NOT_FOUND,
        )
    yield case(
        "EV-10 resilient start with spec_version above the world's -> RunNotSupportedError",
        request(ev.RUN_STARTED, BOOTSTRAP, spec_version=WORLD + 1),
        Snapshot(run=None),
        NOT_SUPPORTED,
    )

    # terminal transitions (EV-7, HK-3)
    for status in LIVE_RUNS:
        before = run(status)
        yield case(
            f"EV-7 run_completed on {status} run -> completed, children disposed",
            request(ev.RUN_COMPLETED),
            Snapshot(run=before),
            run_transition(
                moved(before, status="completed", output=OUTPUT, completed_at=NOW), ev.RUN_COMPLETED, dispose=True
            ),
        )
        yield case(
            f"EV-7 run_failed on {status} run -> failed with structured error, children disposed",
            request(ev.RUN_FAILED),
            Snapshot(run=before),
            run_transition(
                moved(before, status="failed", error=StructuredError(message="boom", stack="at wf"), completed_at=NOW),
                ev.RUN_FAILED,
                dispose=True,
            ),
        )
        yield case(
            f"EV-7 run_cancelled on {status} run -> cancelled, children disposed",
            request(ev.RUN_CANCELLED),
            Snapshot(run=before),
            run_transition(moved(before, status="cancelled", completed_at=NOW), ev.RUN_CANCELLED, dispose=True),
        )
    before = run("running")
    e = event(ev.RUN_COMPLETED, {})
    after = moved(before, status="completed", completed_at=NOW)
    yield case(
        "EV-7 run_completed without output -> output None",
        request(ev.RUN_COMPLETED, {}),
        Snapshot(run=before),
        Effects(events=(e,), run=after, dispose_run_children=True, result=EventResult(event=e, run=after)),
    )
    failure: Mapping[str, Any]
    for label, failure, error in (
        (
            "error_code overrides error.code",
            {"error": {"message": "m", "code": "INNER"}, "error_code": "OUTER"},
            StructuredError(message="m", code="OUTER"),
        ),
        (
            "error.code kept without error_code",
            {"error": {"message": "m", "stack": "s", "code": "INNER"}},
            StructuredError(message="m", stack="s", code="INNER"),
        ),
        (
            "string error with top-level stack",
            {"error": "m", "stack": "top", "error_code": "E"},
            StructuredError(message="m", stack="top", code="E"),
        ),
    ):
        e = event(ev.RUN_FAILED, failure)
        after = moved(before, status="failed", error=error, completed_at=NOW)
        yield case(
            f"EV-7 run_failed {label}",
            request(ev.RUN_FAILED, failure),
            Snapshot(run=before),
            Effects(events=(e,), run=after, dispose_run_children=True, result=EventResult(event=e, run=after)),
        )
    for status in TERMINAL_RUNS:
        for t in (ev.RUN_COMPLETED, ev.RUN_FAILED):
            yield case(f"EV-7 {t} on {status} run -> 409", request(t), Snapshot(run=run(status)), CONFLICT)
        for t in (ev.STEP_CREATED, ev.HOOK_CREATED, ev.WAIT_CREATED):
            yield case(f"EV-7 {t} on {status} run -> 409", request(t), Snapshot(run=run(status)), CONFLICT)
    for status in ("completed", "failed"):
        yield case(
            f"EV-7 run_cancelled on {status} run -> 409", request(ev.RUN_CANCELLED), Snapshot(run=run(status)), CONFLICT
        )
    cancelled = run("cancelled")
    e = event(ev.RUN_CANCELLED)
    yield case(
        "EV-7 run_cancelled on cancelled run -> idempotent, event appended, run unchanged",
        request(ev.RUN_CANCELLED),
        Snapshot(run=cancelled),
        Effects(events=(e,), result=EventResult(event=e, run=cancelled)),
    )

    # missing runs, EV-10 on existing runs
    for t in CLIENT_EVENT_TYPES:
        if t != ev.RUN_CREATED:
            yield case(
                f"EV-2 {t} on missing run -> WorkflowRunNotFoundError", request(t), Snapshot(run=None), RUN_NOT_FOUND
            )
            yield case(
                f"EV-10 {t} on a run with spec_version above the world's -> RunNotSupportedError",
                request(t),
                Snapshot(run=run("running", spec_version=WORLD + 1), step=step(), hook=hook(), wait=wait()),
                NOT_SUPPORTED,
            )


@pytest.mark.parametrize(("req", "snapshot", "expect"), list(run_cases()))
def test_run_events(req: EventRequest, snapshot: Snapshot, expect: Effects | Raises) -> None:
    check(req, snapshot, expect)


# -- steps -----------------------------------------------------------------------


def step_cases() -> Iterator[Any]:
    live = run("running")
    new = Step(
        run_id=RUN_ID,
        step_id=STEP_ID,
        step_name="add",
        status="pending",
        input=INPUT,
        attempt=0,
        spec_version=WORLD,
        created_at=NOW,
        updated_at=NOW,
    )
    for status in LIVE_RUNS:
        yield case(
            f"EV-8 step_created on {status} run -> pending step, attempt 0",
            request(ev.STEP_CREATED),
            Snapshot(run=run(status)),
            step_transition(new, ev.STEP_CREATED),
        )
    e = event(ev.STEP_CREATED, spec_version=2)
    v2 = dataclasses.replace(new, spec_version=2)
    yield case(
        "EV-2 step_created records the request spec_version on step and event",
        request(ev.STEP_CREATED, spec_version=2),
        Snapshot(run=live),
        Effects(events=(e,), step=v2, result=EventResult(event=e, step=v2)),
    )
    for status in ("pending", "running", "completed", "failed"):
        yield case(
            f"EV-8 duplicate step_created on {status} step -> 409",
            request(ev.STEP_CREATED),
            Snapshot(run=live, step=step(status)),
            CONFLICT,
        )
    for t in STEP_EVENTS_ON_EXISTING:
        yield case(f"EV-8 {t} on unknown step -> StepNotFoundError", request(t), Snapshot(run=live), STEP_NOT_FOUND)
        for status in ("completed", "failed"):
            yield case(f"EV-8 {t} on {status} step -> 409", request(t), Snapshot(run=live, step=step(status)), CONFLICT)
            yield case(
                f"EV-8 {t} on {status} step of a cancelled run -> 409 before 410",
                request(t),
                Snapshot(run=run("cancelled"), step=step(status)),
                CONFLICT,
            )

    theirs = step("running", run_id=OTHER_RUN_ID)
    for t in STEP_EVENTS_ON_EXISTING:
        yield case(
            f"EV-12 {t} on another run's step -> StepNotFoundError",
            request(t),
            Snapshot(run=live, step=theirs),
            STEP_NOT_FOUND,
        )
    yield case(
        "EV-12 step_created with the id of another run's step -> a new step of this run",
        request(ev.STEP_CREATED),
        Snapshot(run=live, step=theirs),
        step_transition(new, ev.STEP_CREATED),
    )

    pending = step("pending")
    yield case(
        "EV-8 step_started on pending step -> running, attempt 1, started_at set",
        request(ev.STEP_STARTED),
        Snapshot(run=live, step=pending),
        step_transition(moved(pending, status="running", attempt=1, started_at=NOW), ev.STEP_STARTED),
    )
    yield case(
        "EV-8 step_started ignores a client attempt: attempt is the delivery count",
        request(ev.STEP_STARTED, {"attempt": 7}),
        Snapshot(run=live, step=pending),
        step_transition(moved(pending, status="running", attempt=1, started_at=NOW), ev.STEP_STARTED, {"attempt": 7}),
    )
    running = step("running")
    yield case(
        "EV-8 step_started on running step (redelivery) -> attempt 2, started_at kept",
        request(ev.STEP_STARTED),
        Snapshot(run=live, step=running),
        step_transition(moved(running, attempt=2), ev.STEP_STARTED),
    )
    retried = step("pending", attempt=1, started_at=EARLIER, error=StructuredError(message="flaky"), retry_after=NOW)
    yield case(
        "EV-8 step_started at retry_after -> running, retry_after cleared, started_at kept",
        request(ev.STEP_STARTED),
        Snapshot(run=live, step=retried),
        step_transition(moved(retried, status="running", attempt=2, retry_after=None), ev.STEP_STARTED),
    )
    for delay, wait_s in (
        (timedelta(milliseconds=1), 1.0),
        (timedelta(seconds=1.5), 2.0),
        (timedelta(seconds=30), 30.0),
    ):
        yield case(
            f"EV-8 step_started {delay.total_seconds()}s before retry_after -> 425 retry_after={wait_s:g}",
            request(ev.STEP_STARTED),
            Snapshot(run=live, step=dataclasses.replace(retried, retry_after=NOW + delay)),
            Raises(TooEarlyError, 425, retry_after=wait_s),
        )
    for status in ("pending", "running"):
        before = step(status)
        yield case(
            f"EV-8 step_completed on {status} step -> completed with result",
            request(ev.STEP_COMPLETED),
            Snapshot(run=live, step=before),
            step_transition(moved(before, status="completed", output=RESULT, completed_at=NOW), ev.STEP_COMPLETED),
        )
        yield case(
            f"EV-8 step_failed on {status} step -> failed with error and stack",
            request(ev.STEP_FAILED),
            Snapshot(run=live, step=before),
            step_transition(
                moved(
                    before, status="failed", error=StructuredError(message="fatal", stack="at add"), completed_at=NOW
                ),
                ev.STEP_FAILED,
            ),
        )
        yield case(
            f"EV-8 step_retrying on {status} step -> pending with error and retry_after",
            request(ev.STEP_RETRYING),
            Snapshot(run=live, step=before),
            step_transition(
                moved(before, status="pending", error=StructuredError(message="flaky"), retry_after=RETRY_AT),
                ev.STEP_RETRYING,
            ),
        )
    data = {"error": {"message": "flaky", "stack": "inner"}, "stack": "outer"}
    yield case(
        "EV-8 step_retrying without retry_after -> retry_after None; top-level stack wins",
        request(ev.STEP_RETRYING, data),
        Snapshot(run=live, step=running),
        step_transition(
            moved(running, status="pending", error=StructuredError(message="flaky", stack="outer")),
            ev.STEP_RETRYING,
            data,
        ),
    )

    for status in TERMINAL_RUNS:
        over = run(status)
        for t in (ev.STEP_STARTED, ev.STEP_FAILED):
            yield case(
                f"EV-8 {t} on pending step of {status} run -> 410",
                request(t),
                Snapshot(run=over, step=pending),
                EXPIRED,
            )
        yield case(
            f"EV-8 step_completed on running step of {status} run -> allowed",
            request(ev.STEP_COMPLETED),
            Snapshot(run=over, step=running),
            step_transition(moved(running, status="completed", output=RESULT, completed_at=NOW), ev.STEP_COMPLETED),
        )
        yield case(
            f"EV-8 step_failed on running step of {status} run -> allowed",
            request(ev.STEP_FAILED),
            Snapshot(run=over, step=running),
            step_transition(
                moved(
                    running, status="failed", error=StructuredError(message="fatal", stack="at add"), completed_at=NOW
                ),
                ev.STEP_FAILED,
            ),
        )
        yield case(
            f"EV-8 step_started on running step of {status} run -> allowed, attempt 2",
            request(ev.STEP_STARTED),
            Snapshot(run=over, step=running),
            step_transition(moved(running, attempt=2), ev.STEP_STARTED),
        )
        yield case(
            f"EV-8 step_completed on pending step of {status} run -> allowed",
            request(ev.STEP_COMPLETED),
            Snapshot(run=over, step=pending),
            step_transition(moved(pending, status="completed", output=RESULT, completed_at=NOW), ev.STEP_COMPLETED),
        )
        yield case(
            f"EV-8 step_retrying on pending step of {status} run -> allowed",
            request(ev.STEP_RETRYING),
            Snapshot(run=over, step=pending),
            step_transition(
                moved(pending, status="pending", error=StructuredError(message="flaky"), retry_after=RETRY_AT),
                ev.STEP_RETRYING,
            ),
        )


@pytest.mark.parametrize(("req", "snapshot", "expect"), list(step_cases()))
def test_step_events(req: EventRequest, snapshot: Snapshot, expect: Effects | Raises) -> None:
    check(req, snapshot, expect)


# -- waits -----------------------------------------------------------------------


def wait_cases() -> Iterator[Any]:
    live = run("running")
    created = Wait(
        run_id=RUN_ID, wait_id=WAIT_ID, status="waiting", resume_at=RESUME_AT, created_at=NOW, updated_at=NOW
    )
    yield case(
        "EV-9 wait_created -> waiting wait with resume_at",
        request(ev.WAIT_CREATED),
        Snapshot(run=live),
        wait_transition(created, ev.WAIT_CREATED),
    )
    for status in ("waiting", "completed"):
        yield case(
            f"EV-9 duplicate wait_created on {status} wait -> 409",
            request(ev.WAIT_CREATED),
            Snapshot(run=live, wait=wait(status)),
            CONFLICT,
        )
    yield case(
        "EV-9 wait_completed on waiting wait -> completed once",
        request(ev.WAIT_COMPLETED),
        Snapshot(run=live, wait=wait()),
        wait_transition(moved(wait(), status="completed", completed_at=NOW), ev.WAIT_COMPLETED),
    )
    yield case(
        "EV-9 second wait_completed -> 409",
        request(ev.WAIT_COMPLETED),
        Snapshot(run=live, wait=wait("completed")),
        CONFLICT,
    )
    yield case(
        "EV-9 wait_completed on unknown wait -> WaitNotFoundError",
        request(ev.WAIT_COMPLETED),
        Snapshot(run=live),
        WAIT_NOT_FOUND,
    )
    theirs = dataclasses.replace(wait(), run_id=OTHER_RUN_ID)
    yield case(
        "EV-12 wait_completed on another run's wait -> WaitNotFoundError",
        request(ev.WAIT_COMPLETED),
        Snapshot(run=live, wait=theirs),
        WAIT_NOT_FOUND,
    )
    yield case(
        "EV-12 wait_created with the id of another run's wait -> a new wait of this run",
        request(ev.WAIT_CREATED),
        Snapshot(run=live, wait=theirs),
        wait_transition(created, ev.WAIT_CREATED),
    )
    for status in TERMINAL_RUNS:
        yield case(
            f"HK-3 wait_completed on {status} run (its waits deleted) -> WaitNotFoundError",
            request(ev.WAIT_COMPLETED),
            Snapshot(run=run(status)),
            WAIT_NOT_FOUND,
        )


@pytest.mark.parametrize(("req", "snapshot", "expect"), list(wait_cases()))
def test_wait_events(req: EventRequest, snapshot: Snapshot, expect: Effects | Raises) -> None:
    check(req, snapshot, expect)


# -- hooks -----------------------------------------------------------------------


def hook_cases() -> Iterator[Any]:
    live = run("running")
    created = hook(created_at=NOW)
    e = event(ev.HOOK_CREATED)
    yield case(
        "HK-1 hook_created with a free token -> hook created, is_webhook defaults to true",
        request(ev.HOOK_CREATED),
        Snapshot(run=live),
        Effects(events=(e,), hook=created, result=EventResult(event=e, hook=created)),
    )
    data = {"token": "tok", "is_webhook": False}
    plain = hook(created_at=NOW, metadata=None, is_webhook=False)
    e = event(ev.HOOK_CREATED, data)
    yield case(
        "HK-1 hook_created with is_webhook false and no metadata",
        request(ev.HOOK_CREATED, data),
        Snapshot(run=live),
        Effects(events=(e,), hook=plain, result=EventResult(event=e, hook=plain)),
    )
    for label, holder in (
        ("another run", hook(hook_id="hook_other", run_id=OTHER_RUN_ID)),
        ("another hook of the same run", hook(hook_id="hook_other")),
    ):
        conflict = event(ev.HOOK_CONFLICT, {"token": "tok", "conflicting_run_id": holder.run_id})
        yield case(
            f"HK-2 hook_created with token held by {label} -> hook_conflict event, no hook",
            request(ev.HOOK_CREATED),
            Snapshot(run=live, token_holder=holder),
            Effects(events=(conflict,), result=EventResult(event=conflict)),
        )
    yield case(
        "HK-2 same hook re-sent -> 409, not a self-conflict",
        request(ev.HOOK_CREATED),
        Snapshot(run=live, hook=hook(), token_holder=hook()),
        CONFLICT,
    )
    later_holder: Hook | None
    for label, later_holder in (
        ("free", None),
        ("now held by another run", hook(hook_id="hook_x", run_id=OTHER_RUN_ID)),
    ):
        yield case(
            f"HK-2 same hook re-sent after disposal, token {label} -> 409",
            request(ev.HOOK_CREATED),
            Snapshot(run=live, hook=hook(), hook_disposed=True, token_holder=later_holder),
            CONFLICT,
        )
    e = event(ev.HOOK_RECEIVED)
    yield case(
        "HK-4 hook_received on live hook -> event only, hook returned",
        request(ev.HOOK_RECEIVED),
        Snapshot(run=live, hook=hook()),
        Effects(events=(e,), result=EventResult(event=e, hook=hook())),
    )
    e = event(ev.HOOK_DISPOSED)
    yield case(
        "HK-4 hook_disposed on live hook -> hook deleted, result carries no hook",
        request(ev.HOOK_DISPOSED),
        Snapshot(run=live, hook=hook()),
        Effects(events=(e,), disposed_hook_id=HOOK_ID, result=EventResult(event=e)),
    )
    for t in (ev.HOOK_RECEIVED, ev.HOOK_DISPOSED):
        yield case(f"HK-4 {t} on unknown hook -> HookNotFoundError", request(t), Snapshot(run=live), HOOK_NOT_FOUND)
    yield case(
        "HK-4 hook_received on disposed hook -> HookNotFoundError",
        request(ev.HOOK_RECEIVED),
        Snapshot(run=live, hook=hook(), hook_disposed=True),
        HOOK_NOT_FOUND,
    )
    yield case(
        "HK-4 hook_disposed on disposed hook -> 409",
        request(ev.HOOK_DISPOSED),
        Snapshot(run=live, hook=hook(), hook_disposed=True),
        CONFLICT,
    )
    for status in TERMINAL_RUNS:
        yield case(
            f"HK-3 hook_received on {status} run (its hooks deleted) -> HookNotFoundError",
            request(ev.HOOK_RECEIVED),
            Snapshot(run=run(status), hook=hook(), hook_disposed=True),
            HOOK_NOT_FOUND,
        )

    # EV-12: an event names a hook of its own run; hook ids are global for creation
    theirs = hook(run_id=OTHER_RUN_ID)
    for t in (ev.HOOK_RECEIVED, ev.HOOK_DISPOSED):
        yield case(
            f"EV-12 {t} on another run's live hook -> HookNotFoundError",
            request(t),
            Snapshot(run=live, hook=theirs),
            HOOK_NOT_FOUND,
        )
        yield case(
            f"EV-12 {t} on another run's disposed hook -> HookNotFoundError, not 409",
            request(t),
            Snapshot(run=live, hook=theirs, hook_disposed=True),
            HOOK_NOT_FOUND,
        )
    for label, disposed in (("live", False), ("disposed", True)):
        yield case(
            f"EV-12 hook_created with the id of another run's {label} hook -> 409 (hook ids are global)",
            request(ev.HOOK_CREATED),
            Snapshot(run=live, hook=theirs, hook_disposed=disposed),
            CONFLICT,
        )


@pytest.mark.parametrize(("req", "snapshot", "expect"), list(hook_cases()))
def test_hook_events(req: EventRequest, snapshot: Snapshot, expect: Effects | Raises) -> None:
    check(req, snapshot, expect)


# -- run ids (EV-3) --------------------------------------------------------------

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ulid_at(when: datetime) -> str:
    """A ULID whose time is ``when`` (to the ms), encoded here independently of worlds_sdk.ids."""
    value = ((when - EPOCH) // timedelta(milliseconds=1)) << 80 | 0x1234
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def test_ev3_run_created_without_id_mints_a_run_id() -> None:
    assert resolve_run_id(None, request(ev.RUN_CREATED), NOW, CountingMint()) == "wrun_1"


def test_ev3_minted_run_id_is_a_fresh_wrun_ulid() -> None:
    before = datetime.now(UTC)
    minted = resolve_run_id(None, request(ev.RUN_CREATED), NOW)
    assert minted.startswith("wrun_") and len(minted) == 31
    resolve_run_id(minted, request(ev.RUN_CREATED), before)  # accepted as a client id at mint time


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(timedelta(0), id="EV-3 client run id minted now -> accepted"),
        pytest.param(-timedelta(hours=24), id="EV-3 client run id exactly 24 h old -> accepted"),
        pytest.param(timedelta(minutes=5), id="EV-3 client run id exactly 5 min ahead -> accepted"),
    ],
)
def test_ev3_client_run_id_inside_window_is_kept(offset: timedelta) -> None:
    run_id = "wrun_" + ulid_at(NOW + offset)
    assert resolve_run_id(run_id, request(ev.RUN_CREATED), NOW) == run_id
    assert resolve_run_id(run_id.lower(), request(ev.RUN_CREATED), NOW) == run_id.lower()


BAD_RUN_IDS = [
    pytest.param("wrun_" + ulid_at(NOW - timedelta(hours=24, milliseconds=1)), id="EV-3 run id 24 h + 1 ms old"),
    pytest.param("wrun_" + ulid_at(NOW + timedelta(minutes=5, milliseconds=1)), id="EV-3 run id 5 min + 1 ms ahead"),
    pytest.param("wrun_" + ulid_at(NOW)[:-1], id="EV-3 run id ULID too short"),
    pytest.param("wrun_" + ulid_at(NOW) + "0", id="EV-3 run id ULID too long"),
    pytest.param("wrun_" + ulid_at(NOW)[:-1] + "U", id="EV-3 run id ULID with non-Crockford char"),
    pytest.param("wrun_8" + ulid_at(NOW)[1:], id="EV-3 run id ULID above 128 bits"),
    pytest.param("wrun_7ZZZZZZZZZ" + "0" * 16, id="EV-3 run id ULID time beyond year 9999"),
    pytest.param("step_" + ulid_at(NOW), id="EV-3 run id with wrong prefix"),
    pytest.param(ulid_at(NOW), id="EV-3 run id without prefix"),
    pytest.param("wrun" + ulid_at(NOW), id="EV-3 run id without separator"),
    pytest.param("", id="EV-3 empty run id"),
]


@pytest.mark.parametrize("run_id", BAD_RUN_IDS)
def test_ev3_bad_client_run_id_is_a_validation_error(run_id: str) -> None:
    with pytest.raises(ValidationError) as info:
        resolve_run_id(run_id, request(ev.RUN_CREATED), NOW)
    assert info.value.field == "run_id"
    assert info.value.status == 400


@pytest.mark.parametrize(
    "event_type", [pytest.param(t, id=f"EV-3 {t} without run id") for t in CLIENT_EVENT_TYPES if t != ev.RUN_CREATED]
)
@pytest.mark.parametrize("run_id", [pytest.param(None, id="None"), pytest.param("", id="empty")])
def test_ev3_other_events_need_a_run_id(event_type: str, run_id: str | None) -> None:
    with pytest.raises(ValidationError) as info:
        resolve_run_id(run_id, request(event_type), NOW)
    assert info.value.field == "run_id"


def test_ev3_other_events_take_the_run_id_as_given() -> None:
    """Only run_created checks the id's shape; for the rest the run lookup decides."""
    assert resolve_run_id("any-id", request(ev.STEP_CREATED), NOW) == "any-id"


# -- rule families without a row in the tables above, from docs/spec.md alone ------


def accepting_snapshot(event_type: str) -> Snapshot:
    """A state in which §3 accepts ``event_type`` as sent by :func:`request`."""
    if event_type == ev.RUN_CREATED:
        return Snapshot(run=None)
    live = run("running")
    if event_type in (ev.STEP_CREATED, ev.HOOK_CREATED, ev.WAIT_CREATED):
        return Snapshot(run=live)
    if event_type == ev.RUN_STARTED:
        return Snapshot(run=run("pending"))
    return Snapshot(run=live, step=step("running"), hook=hook(), wait=wait())


ACCEPTED = [pytest.param(t, id=t) for t in CLIENT_EVENT_TYPES]


@pytest.mark.parametrize("event_type", ACCEPTED)
def test_ev1_one_request_is_one_effects_whose_result_is_what_it_writes(event_type: str) -> None:
    """EV-1: the event and the entity change are one unit; EV-2: the result is that unit's event and entity."""
    effects = decide(RUN_ID, request(event_type), accepting_snapshot(event_type), now=NOW, world_spec_version=WORLD)
    assert len(effects.events) == 1 and effects.result.event == effects.events[-1]
    for name in ("run", "step", "wait"):
        written = getattr(effects, name)
        assert written is None or getattr(effects.result, name) == written, name
    if effects.hook is not None:
        assert effects.result.hook == effects.hook
    terminal = event_type in (ev.RUN_COMPLETED, ev.RUN_FAILED, ev.RUN_CANCELLED)
    assert effects.dispose_run_children is terminal  # HK-3: in the same unit as the terminal event
    assert (effects.disposed_hook_id == HOOK_ID) is (event_type == ev.HOOK_DISPOSED)


@pytest.mark.parametrize("event_type", ACCEPTED)
def test_ev11_appended_events_carry_the_run_the_clock_and_the_spec_version(event_type: str) -> None:
    """EV-11: created_at never decreases along the log -- every event of one request is stamped ``now``."""
    effects = decide(
        RUN_ID, request(event_type, spec_version=2), accepting_snapshot(event_type), now=NOW, world_spec_version=WORLD
    )
    for e in effects.events:
        assert (e.run_id, e.created_at, e.spec_version) == (RUN_ID, NOW, 2)
        assert e.correlation_id == CORRELATION.get(event_type)


def test_ev11_a_resilient_start_appends_run_created_first_with_the_older_id() -> None:
    ids = CountingMint()
    effects = decide(
        RUN_ID, request(ev.RUN_STARTED, BOOTSTRAP), Snapshot(run=None), now=NOW, world_spec_version=WORLD, mint=ids
    )
    assert [(e.event_type, e.event_id) for e in effects.events] == [
        (ev.RUN_CREATED, "evnt_1"),
        (ev.RUN_STARTED, "evnt_2"),
    ]


EXTRA = {"note": "kept", "$b": "not bytes", "$o": {"$t": "not a time"}, "nested": {"$x": [1]}}


@pytest.mark.parametrize("event_type", [t for t in ACCEPTED if t.values[0] != ev.RUN_CREATED])
def test_decision_21_keys_beyond_the_table_are_kept_in_the_event(event_type: str) -> None:
    """Decision 21 and PL-1: extra keys, also ones that look like codec tags, are the event's data as sent."""
    data = {**(DATA[event_type] or {}), **EXTRA}
    effects = decide(
        RUN_ID, request(event_type, data), accepting_snapshot(event_type), now=NOW, world_spec_version=WORLD
    )
    assert effects.events[-1].event_data == data


def test_decision_15_run_created_drops_keys_beyond_the_table() -> None:
    effects = decide(
        RUN_ID, request(ev.RUN_CREATED, {**BOOTSTRAP, **EXTRA}), Snapshot(run=None), now=NOW, world_spec_version=WORLD
    )
    assert effects.events[0].event_data == BOOTSTRAP


def test_decision_12_error_objects_with_dollar_keys_keep_their_message() -> None:
    data = {"error": {"message": "m", "code": "E", "$x": 1}}
    effects = decide(RUN_ID, request(ev.RUN_FAILED, data), Snapshot(run=run()), now=NOW, world_spec_version=WORLD)
    assert effects.run is not None and effects.run.error == StructuredError(message="m", code="E")


@pytest.mark.parametrize(
    ("req", "snapshot", "expect"),
    [
        case(
            "Decision 1 EV-10 before the terminal-run guards: run_started on a failed run of a newer spec",
            request(ev.RUN_STARTED),
            Snapshot(run=run("failed", spec_version=WORLD + 1)),
            NOT_SUPPORTED,
        ),
        case(
            "Decision 1 EV-10 before the terminal-run guards: step_created on a completed run of a newer spec",
            request(ev.STEP_CREATED),
            Snapshot(run=run("completed", spec_version=WORLD + 1)),
            NOT_SUPPORTED,
        ),
        case(
            "Decision 1 the run before EV-10: a newer spec_version on a missing run -> WorkflowRunNotFoundError",
            request(ev.STEP_CREATED, spec_version=WORLD + 1),
            Snapshot(run=None),
            RUN_NOT_FOUND,
        ),
        case(
            "Decision 1 the run's guards before the step's: step_started too early on a completed run -> 410",
            request(ev.STEP_STARTED),
            Snapshot(run=run("completed"), step=step(retry_after=NOW + timedelta(minutes=1))),
            EXPIRED,
        ),
    ],
)
def test_decision_1_order_of_checks(req: EventRequest, snapshot: Snapshot, expect: Effects | Raises) -> None:
    check(req, snapshot, expect)


# -- EV-10 detail, snapshot selectors ---------------------------------------------


def test_ev10_error_names_both_spec_versions() -> None:
    with pytest.raises(RunNotSupportedError) as info:
        decide(RUN_ID, request(ev.RUN_CANCELLED), Snapshot(run=run(spec_version=7)), now=NOW, world_spec_version=WORLD)
    assert (info.value.run_spec_version, info.value.world_spec_version) == (7, WORLD)


def test_ev10_older_run_spec_version_is_served() -> None:
    older = run("running", spec_version=WORLD - 1)
    effects = decide(RUN_ID, request(ev.RUN_CANCELLED), Snapshot(run=older), now=NOW, world_spec_version=WORLD)
    assert effects.run is not None and effects.run.status == "cancelled"


@pytest.mark.parametrize("event_type", CLIENT_EVENT_TYPES)
def test_snapshot_selectors_name_what_the_world_must_read(event_type: str) -> None:
    req = request(event_type)
    assert needs_step(req) is (event_type in ev.STEP_EVENT_TYPES)
    assert needs_hook(req) is (event_type in ev.HOOK_EVENT_TYPES)
    assert needs_wait(req) is (event_type in ev.WAIT_EVENT_TYPES)
    assert requested_token(req) == ("tok" if event_type == ev.HOOK_CREATED else None)


def test_requested_token_ignores_a_non_string_token() -> None:
    assert requested_token(request(ev.HOOK_CREATED, {"token": 5})) is None


# -- payload fields and resolve_data='none' --------------------------------------

SPEC_PAYLOAD_FIELDS = {
    "run_created": ("input",),
    "run_completed": ("output",),
    "run_failed": ("error",),
    "step_created": ("input",),
    "step_completed": ("result",),
    "step_failed": ("error",),
    "step_retrying": ("error",),
    "hook_created": ("metadata",),
    "hook_received": ("payload",),
}


def test_payload_fields_are_exactly_the_spec_list() -> None:
    assert ev.PAYLOAD_FIELDS == SPEC_PAYLOAD_FIELDS


@pytest.mark.parametrize("event_type", ev.EVENT_TYPES)
def test_strip_event_removes_exactly_the_payload_fields(event_type: str) -> None:
    data: dict[str, Any] = {
        "input": b"i",
        "output": b"o",
        "result": b"r",
        "error": "e",
        "metadata": b"m",
        "payload": b"p",
        "token": "t",
    }
    data |= {"correlation": "kept", "resume_at": RESUME_AT}
    full = event(event_type, data)
    stripped = ev.strip_event(full, "none")
    payload = SPEC_PAYLOAD_FIELDS.get(event_type, ())
    assert stripped == dataclasses.replace(full, event_data={k: v for k, v in data.items() if k not in payload})
    assert ev.strip_event(full, "all") == full
    assert full.event_data == data  # the original is untouched


@pytest.mark.parametrize("event_type", [t for t in CLIENT_EVENT_TYPES if t in SPEC_PAYLOAD_FIELDS])
def test_appended_events_strip_to_metadata(event_type: str) -> None:
    """An event built by the rules, stripped, keeps every non-payload key and all metadata."""
    snapshot = Snapshot(
        run=None if event_type == ev.RUN_CREATED else run("running"),
        step=None if event_type == ev.STEP_CREATED else step(),
        hook=None if event_type == ev.HOOK_CREATED else hook(),
    )
    appended = decide(RUN_ID, request(event_type), snapshot, now=NOW, world_spec_version=WORLD).events[-1]
    stripped = ev.strip_event(appended, "none")
    assert stripped.event_data is not None and appended.event_data is not None
    assert set(appended.event_data) - set(stripped.event_data) == set(SPEC_PAYLOAD_FIELDS[event_type])
    assert dataclasses.replace(stripped, event_data=None) == dataclasses.replace(appended, event_data=None)


def test_strip_event_leaves_events_without_data() -> None:
    bare = event(ev.RUN_COMPLETED, None)
    assert ev.strip_event(bare, "none") is bare


@pytest.mark.parametrize(
    ("entity", "payload"),
    [
        pytest.param(run("completed"), {"input": None, "output": None}, id="run input and output"),
        pytest.param(run("failed"), {"input": None, "error": None}, id="run input and error"),
        pytest.param(step("completed"), {"input": None, "output": None}, id="step input and output"),
        pytest.param(step("failed"), {"input": None, "error": None}, id="step input and error"),
        pytest.param(hook(), {"metadata": None}, id="hook metadata"),
    ],
)
def test_strip_entity_clears_exactly_the_payload_fields(entity: Any, payload: dict[str, None]) -> None:
    assert ev.strip_entity(entity, "none") == dataclasses.replace(entity, **payload)
    assert ev.strip_entity(entity, "all") is entity


def test_strip_entity_on_an_event_strips_its_data() -> None:
    full = event(ev.HOOK_RECEIVED)
    assert ev.strip_entity(full, "none") == dataclasses.replace(full, event_data={})


def test_a_tombstone_without_its_hook_is_refused() -> None:
    """EV-12 needs the run of a disposed hook; a snapshot that leaves it out is a World's bug, said at once."""
    with pytest.raises(ValueError, match="hook_disposed needs the disposed hook"):
        Snapshot(run=run(), hook_disposed=True)
