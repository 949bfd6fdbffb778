"""The event-sourcing rules: one pure function from (state, request) to effects.

This module is the semantic heart of the contract (SPEC §3). Given what a World
read inside its atomic unit (a :class:`Snapshot`), :func:`decide` returns the
:class:`Effects` to write -- the events to append and the entity changes -- or
raises the typed error the runtime expects. It does no I/O, so a World may call
it inside its own transaction (the local world does), implement the same rules
natively (the Postgres world does, in SQL), and the conformance suite uses it as
the oracle its model-based tests compare every World against.

Rule ids (EV-…, HK-…) refer to ``docs/spec.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from . import events as ev
from .errors import (
    EntityConflictError,
    HookNotFoundError,
    RunExpiredError,
    RunNotSupportedError,
    StepNotFoundError,
    TooEarlyError,
    ValidationError,
    WaitNotFoundError,
    WorkflowRunNotFoundError,
)
from .ids import check_client_run_id, new_id
from .models import (
    TERMINAL_RUN_STATUSES,
    TERMINAL_STEP_STATUSES,
    Event,
    EventRequest,
    EventResult,
    Hook,
    Run,
    Step,
    StructuredError,
    Wait,
)
from .validation import validate_request

IdMinter = Callable[[str], str]
_E = TypeVar("_E", Step, Hook, Wait)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What :func:`decide` needs to see, read inside the World's atomic unit.

    ``step`` and ``wait`` are the request's run's entities with the correlation id.
    ``hook`` is the hook with that id, live or disposed, whatever its run: hook ids
    are global, so a re-sent ``hook_created`` must see every hook that ever had the
    id. ``hook_disposed`` says ``hook`` is a tombstone (so a second dispose is a
    conflict, not a miss). ``token_holder`` is the live hook that holds the
    requested token, if any (``hook_created`` only). An entity of another run is a
    miss for every event but ``hook_created`` (EV-12); :func:`decide` checks that
    itself, so a World may look entities up by id alone.
    """

    run: Run | None
    step: Step | None = None
    hook: Hook | None = None
    hook_disposed: bool = False
    token_holder: Hook | None = None
    wait: Wait | None = None

    def __post_init__(self) -> None:
        if self.hook_disposed and self.hook is None:
            # Before EV-12 a tombstone was passed as hook=None; its run is needed now.
            raise ValueError("Snapshot.hook_disposed needs the disposed hook itself as Snapshot.hook")


@dataclass(frozen=True, slots=True, kw_only=True)
class Effects:
    """What to write, all in one atomic unit.

    ``events`` are appended in order (possibly none: an idempotent ``run_started``).
    ``run``/``step``/``wait`` are the new states to upsert, ``hook`` a hook to insert;
    ``disposed_hook_id`` a hook to delete (its token released); ``dispose_run_children``
    deletes every hook and wait of the run (HK-3).
    """

    events: tuple[Event, ...]
    result: EventResult
    run: Run | None = None
    step: Step | None = None
    hook: Hook | None = None
    wait: Wait | None = None
    disposed_hook_id: str | None = None
    dispose_run_children: bool = False


def resolve_run_id(run_id: str | None, request: EventRequest, now: datetime, mint: IdMinter = new_id) -> str:
    """EV-3: the run id an event applies to, minting one for ``run_created`` without an id."""
    if request.event_type == ev.RUN_CREATED:
        if run_id is None:
            return mint("wrun")
        check_client_run_id(run_id, now)
        return run_id
    if not run_id:
        raise ValidationError("is required for every event except run_created", field="run_id")
    return run_id


def needs_step(request: EventRequest) -> bool:
    return request.event_type in ev.STEP_EVENT_TYPES


def needs_hook(request: EventRequest) -> bool:
    return request.event_type in ev.HOOK_EVENT_TYPES


def needs_wait(request: EventRequest) -> bool:
    return request.event_type in ev.WAIT_EVENT_TYPES


def requested_token(request: EventRequest) -> str | None:
    """The token a ``hook_created`` asks for: the World must load its live holder."""
    if request.event_type == ev.HOOK_CREATED and request.event_data is not None:
        token = request.event_data.get("token")
        return token if isinstance(token, str) else None
    return None


def decide(
    run_id: str,
    request: EventRequest,
    snapshot: Snapshot,
    *,
    now: datetime,
    world_spec_version: int,
    mint: IdMinter = new_id,
) -> Effects:
    """Apply the rules of SPEC §3 to one request; raise the typed error if it is illegal."""
    validate_request(request)
    ctx = _Context(run_id, request, now, world_spec_version, mint)
    if request.event_type == ev.RUN_CREATED:
        return ctx.run_created(snapshot.run)

    run = snapshot.run
    prefix: tuple[Event, ...] = ()
    if run is None:
        if request.event_type == ev.RUN_STARTED and _is_bootstrap(request.event_data):
            created = ctx.run_created(None, bootstrap=True)  # EV-6 resilient start
            run, prefix = created.run, created.events
            assert run is not None
        else:
            raise WorkflowRunNotFoundError(f"workflow run {run_id!r} does not exist")
    if run.spec_version > world_spec_version:
        raise RunNotSupportedError(run.spec_version, world_spec_version)  # EV-10

    effects = ctx.dispatch(run, snapshot)
    if prefix:
        effects = dataclasses.replace(effects, events=prefix + effects.events, run=effects.run or run)
    return effects


def _is_bootstrap(data: Mapping[str, Any] | None) -> bool:
    return bool(data) and all(k in data for k in ("deployment_id", "workflow_name", "input"))  # type: ignore[operator]


def _error(data: Mapping[str, Any], *, code: str | None = None) -> StructuredError:
    raw = data.get("error")
    stack = data.get("stack")
    if isinstance(raw, Mapping):
        return StructuredError(
            message=str(raw.get("message", "")),
            stack=stack if stack is not None else raw.get("stack"),
            code=code if code is not None else raw.get("code"),
        )
    return StructuredError(message="" if raw is None else str(raw), stack=stack, code=code)


class _Context:
    """One decision in progress: the request and the clock, shared by the handlers."""

    def __init__(
        self, run_id: str, request: EventRequest, now: datetime, world_spec_version: int, mint: IdMinter
    ) -> None:
        self.run_id = run_id
        self.request = request
        self.data: Mapping[str, Any] = request.event_data or {}
        self.now = now
        self.spec_version = request.spec_version if request.spec_version is not None else world_spec_version
        self.world_spec_version = world_spec_version
        self.mint = mint

    def event(self, event_type: str | None = None, data: Mapping[str, Any] | None = None) -> Event:
        return Event(
            run_id=self.run_id,
            event_id=self.mint("evnt"),
            event_type=event_type or self.request.event_type,
            correlation_id=self.request.correlation_id if event_type != ev.RUN_CREATED else None,
            event_data=dict(self.request.event_data) if data is None and self.request.event_data is not None else data,
            spec_version=self.spec_version,
            created_at=self.now,
        )

    # -- runs -------------------------------------------------------------

    def run_created(self, existing: Run | None, *, bootstrap: bool = False) -> Effects:
        if self.spec_version > self.world_spec_version:
            raise RunNotSupportedError(self.spec_version, self.world_spec_version)  # EV-10
        if existing is not None:
            raise EntityConflictError(f"workflow run {self.run_id!r} already exists")  # EV-4
        d = self.data
        run = Run(
            run_id=self.run_id,
            status="pending",
            deployment_id=d["deployment_id"],
            workflow_name=d["workflow_name"],
            spec_version=self.spec_version,
            input=d["input"],
            execution_context=d.get("execution_context"),
            created_at=self.now,
            updated_at=self.now,
        )
        data = {k: d[k] for k in ("deployment_id", "workflow_name", "input", "execution_context") if k in d}
        event = self.event(ev.RUN_CREATED, data)
        return Effects(events=(event,), run=run, result=EventResult(event=event, run=run))

    def dispatch(self, run: Run, snap: Snapshot) -> Effects:
        t = self.request.event_type
        if run.status in TERMINAL_RUN_STATUSES:
            self.guard_terminal_run(run, t)
            if t == ev.RUN_CANCELLED:  # EV-7: cancelling a cancelled run is idempotent
                event = self.event()
                return Effects(events=(event,), result=EventResult(event=event, run=run))
        if t in ev.RUN_EVENT_TYPES:
            return self.run_event(run)
        if t in ev.STEP_EVENT_TYPES:
            return self.step_event(run, self.own(snap.step))
        if t in ev.HOOK_EVENT_TYPES:
            return self.hook_event(snap)
        return self.wait_event(self.own(snap.wait))

    def own(self, entity: _E | None) -> _E | None:
        """EV-12: an event names an entity of its own run; one of another run is a miss."""
        return entity if entity is not None and entity.run_id == self.run_id else None

    def guard_terminal_run(self, run: Run, t: str) -> None:
        if t == ev.RUN_STARTED:
            raise RunExpiredError(f"workflow run {run.run_id!r} is already {run.status}")  # EV-5
        if t in (ev.RUN_COMPLETED, ev.RUN_FAILED) or (t == ev.RUN_CANCELLED and run.status != "cancelled"):
            raise EntityConflictError(f"cannot transition run from terminal state {run.status!r}")  # EV-7
        if t in (ev.STEP_CREATED, ev.HOOK_CREATED, ev.WAIT_CREATED):
            raise EntityConflictError(f"cannot create {t.split('_')[0]}s on a {run.status} run")  # EV-7

    def run_event(self, run: Run) -> Effects:
        t = self.request.event_type
        if t == ev.RUN_STARTED:
            if run.status == "running":  # EV-5: idempotent, nothing appended
                return Effects(events=(), result=EventResult(event=None, run=run))
            new = dataclasses.replace(run, status="running", started_at=run.started_at or self.now, updated_at=self.now)
            return self.appended(run=new, dispose=False)
        if t == ev.RUN_COMPLETED:
            new = dataclasses.replace(run, status="completed", output=self.data.get("output"))
        elif t == ev.RUN_FAILED:
            new = dataclasses.replace(run, status="failed", error=_error(self.data, code=self.data.get("error_code")))
        else:
            new = dataclasses.replace(run, status="cancelled")
        new = dataclasses.replace(new, completed_at=self.now, updated_at=self.now)
        return self.appended(run=new, dispose=True)  # HK-3

    def appended(self, *, run: Run, dispose: bool) -> Effects:
        event = self.event()
        return Effects(events=(event,), run=run, dispose_run_children=dispose, result=EventResult(event=event, run=run))

    # -- steps ------------------------------------------------------------

    def step_event(self, run: Run, step: Step | None) -> Effects:
        t = self.request.event_type
        step_id = self.request.correlation_id or ""
        if t == ev.STEP_CREATED:
            if step is not None:
                raise EntityConflictError(f"step {step_id!r} already exists")  # EV-8
            new = Step(
                run_id=self.run_id,
                step_id=step_id,
                step_name=self.data["step_name"],
                status="pending",
                input=self.data["input"],
                attempt=0,
                spec_version=self.spec_version,
                created_at=self.now,
                updated_at=self.now,
            )
            return self.step_effects(new)
        if step is None:
            raise StepNotFoundError(f"step {step_id!r} does not exist in run {self.run_id!r}")
        if step.status in TERMINAL_STEP_STATUSES:
            raise EntityConflictError(f"step {step_id!r} is already {step.status}")  # EV-8
        if run.status in TERMINAL_RUN_STATUSES and step.status != "running" and t in (ev.STEP_STARTED, ev.STEP_FAILED):
            raise RunExpiredError(f"run {self.run_id!r} is {run.status}; step {step_id!r} is not running")
        if t == ev.STEP_STARTED:
            if step.retry_after is not None and step.retry_after > self.now:
                raise TooEarlyError(
                    f"step {step_id!r} may not start before {step.retry_after.isoformat()}",
                    retry_after=(step.retry_after - self.now).total_seconds(),
                )
            new = dataclasses.replace(
                step,
                status="running",
                attempt=step.attempt + 1,
                started_at=step.started_at or self.now,
                retry_after=None,
                updated_at=self.now,
            )
        elif t == ev.STEP_COMPLETED:
            new = dataclasses.replace(
                step, status="completed", output=self.data["result"], completed_at=self.now, updated_at=self.now
            )
        elif t == ev.STEP_FAILED:
            new = dataclasses.replace(
                step, status="failed", error=_error(self.data), completed_at=self.now, updated_at=self.now
            )
        else:
            new = dataclasses.replace(
                step,
                status="pending",
                error=_error(self.data),
                retry_after=self.data.get("retry_after"),
                updated_at=self.now,
            )
        return self.step_effects(new)

    def step_effects(self, step: Step) -> Effects:
        event = self.event()
        return Effects(events=(event,), step=step, result=EventResult(event=event, step=step))

    # -- hooks ------------------------------------------------------------

    def hook_event(self, snap: Snapshot) -> Effects:
        t = self.request.event_type
        hook_id = self.request.correlation_id or ""
        if t == ev.HOOK_CREATED:
            if snap.hook is not None:  # live or disposed, of any run: hook ids are global
                raise EntityConflictError(f"hook {hook_id!r} already created")  # HK-2: no self-conflict
            token = self.data["token"]
            holder = snap.token_holder
            if holder is not None:  # HK-1/HK-2: conflict is data, not an error
                conflict = self.event(ev.HOOK_CONFLICT, {"token": token, "conflicting_run_id": holder.run_id})
                return Effects(events=(conflict,), result=EventResult(event=conflict))
            new = Hook(
                hook_id=hook_id,
                run_id=self.run_id,
                token=token,
                metadata=self.data.get("metadata"),
                is_webhook=self.data.get("is_webhook", True),
                spec_version=self.spec_version,
                created_at=self.now,
            )
            event = self.event()
            return Effects(events=(event,), hook=new, result=EventResult(event=event, hook=new))
        hook = self.own(snap.hook)  # EV-12
        if hook is None:
            raise HookNotFoundError(f"hook {hook_id!r} does not exist in run {self.run_id!r}")  # HK-4
        if snap.hook_disposed:
            if t == ev.HOOK_DISPOSED:
                raise EntityConflictError(f"hook {hook_id!r} already disposed")  # HK-4
            raise HookNotFoundError(f"hook {hook_id!r} was disposed")  # HK-4
        event = self.event()
        if t == ev.HOOK_DISPOSED:
            return Effects(events=(event,), disposed_hook_id=hook_id, result=EventResult(event=event))
        return Effects(events=(event,), result=EventResult(event=event, hook=hook))

    # -- waits ------------------------------------------------------------

    def wait_event(self, wait: Wait | None) -> Effects:
        wait_id = self.request.correlation_id or ""
        if self.request.event_type == ev.WAIT_CREATED:
            if wait is not None:
                raise EntityConflictError(f"wait {wait_id!r} already exists")  # EV-9
            new = Wait(
                run_id=self.run_id,
                wait_id=wait_id,
                status="waiting",
                resume_at=self.data["resume_at"],
                created_at=self.now,
                updated_at=self.now,
            )
        else:
            if wait is None:
                raise WaitNotFoundError(f"wait {wait_id!r} does not exist in run {self.run_id!r}")  # EV-9
            if wait.status == "completed":
                raise EntityConflictError(f"wait {wait_id!r} already completed")  # EV-9
            new = dataclasses.replace(wait, status="completed", completed_at=self.now, updated_at=self.now)
        event = self.event()
        return Effects(events=(event,), wait=new, result=EventResult(event=event, wait=new))
