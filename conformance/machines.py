"""Hypothesis state machines, one per contract, built from the World under test.

Each machine owns one fresh World instance (provisioned in ``__init__``, torn
down in ``teardown``) and a private event loop, and compares the World with a
model after every step. Assertion messages start with the rule id they check.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from worlds_sdk import ids
from worlds_sdk.capabilities import Capability
from worlds_sdk.errors import HookNotFoundError, WorkflowWorldError
from worlds_sdk.models import Event, EventRequest, EventResult

from .builders import bootstrap_request, hook_request, run_created_request, step_request, terminal_request, wait_request
from .harness import WorldHarness, setup_step
from .history import judge
from .oracle import Oracle, comparable
from .queueing import QueueProbe
from .reading import all_events, chunk_pages, read_stream

T = TypeVar("T")
STEP_IDS = ("s1", "s2", "s3")
HOOK_SLOTS = ("h1", "h2")
HOOK_KINDS = ("hook_created", "hook_created", "hook_received", "hook_disposed")
TOKENS = ("tok-a", "tok-b", "tok-c")
WAIT_IDS = ("w1", "w2")
MAX_RUNS = 3
_RULE_OF = {
    "run_started": "EV-5",
    "run_completed": "EV-7",
    "run_failed": "EV-7",
    "run_cancelled": "EV-7",
    "step_created": "EV-8",
    "step_started": "EV-8",
    "step_completed": "EV-8",
    "step_failed": "EV-8",
    "step_retrying": "EV-8",
    "hook_created": "HK-1/HK-2",
    "hook_received": "HK-4/EV-12",
    "hook_disposed": "HK-4/EV-12",
    "wait_created": "EV-9",
    "wait_completed": "EV-9",
}
"""The rule a failed comparison most likely breaks, named first in the failure message."""
"""Few runs, so steps, hooks and terminal events often meet on the same run."""


class _WorldMachine(RuleBasedStateMachine):
    harness: WorldHarness

    def __init__(self) -> None:
        super().__init__()
        self._stack = ExitStack()
        with setup_step("provisioning a sandbox instance"):
            config = self._stack.enter_context(self.harness.sandbox.instance())
        self.loop = asyncio.new_event_loop()
        try:
            with setup_step("opening the World"):
                self.world = self.harness.deadlines.wrap(self.harness.selected.backend.factory(config))
        except BaseException:
            self.loop.close()
            self._stack.close()
            raise

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]

    def teardown(self) -> None:
        try:
            self.run(self.world.close())
        finally:
            self.loop.close()
            self._stack.close()


def events_machine(harness: WorldHarness) -> type[RuleBasedStateMachine]:
    """Events, hooks and waits: every outcome must equal the oracle's (EV-*, HK-*)."""

    class EventsMachine(_WorldMachine):
        runs = Bundle("runs")

        def __init__(self) -> None:
            super().__init__()
            self.oracle = Oracle(self.world.spec_version)

        def both(self, run_id: str, request: EventRequest) -> None:
            rule = _RULE_OF.get(request.event_type, "EV-1")
            now = datetime.now(UTC)
            try:
                expected = self.oracle.apply(run_id, request, now)
            except WorkflowWorldError as exc:
                try:
                    self.run(self.world.events.create(run_id, request))
                except WorkflowWorldError as got:
                    assert isinstance(got, type(exc)), (
                        f"{rule}: {request.event_type}: expected {exc!r}, World raised {got!r}"
                    )
                    return
                raise AssertionError(
                    f"{rule}: {request.event_type}: expected {type(exc).__name__}, World accepted it"
                ) from None
            got_result = self.run(self.world.events.create(run_id, request))
            self.compare(request, expected.result, got_result)

        def compare(self, request: EventRequest, want: EventResult, got: EventResult) -> None:
            what = f"{_RULE_OF.get(request.event_type, 'EV-2')}: {request.event_type}"
            want_type = want.event.event_type if want.event else None
            got_type = got.event.event_type if got.event else None
            assert want_type == got_type, f"{what}: appended {got_type}, oracle appended {want_type}"
            if want.event is not None and got.event is not None:
                assert _event_key(got.event) == _event_key(want.event), f"{what}: appended event differs"
            for name in ("run", "step", "hook", "wait"):
                w, g = comparable(getattr(want, name)), comparable(getattr(got, name))
                assert w == g, f"{what}: result.{name} is {g}, oracle says {w}"

        @initialize(target=runs)
        def first_run(self) -> str:
            return self.create_run()

        @precondition(lambda self: len(self.oracle.runs) < MAX_RUNS)
        @rule(target=runs)
        def create_run(self) -> str:
            result = self.run(self.world.events.create(None, run_created_request()))
            assert result.run is not None, "EV-2: run_created must return the run"
            self.oracle.apply(result.run.run_id, run_created_request(), datetime.now(UTC))
            return result.run.run_id

        @precondition(lambda self: len(self.oracle.runs) < MAX_RUNS)
        @rule(target=runs)
        def bootstrap_run(self) -> str:
            run_id = ids.new_id("wrun")
            self.both(run_id, bootstrap_request())
            return run_id

        @rule(run=runs, kind=st.sampled_from(["started", "completed", "failed", "cancelled"]))
        def run_event(self, run: str, kind: str) -> None:
            request = EventRequest(event_type="run_started") if kind == "started" else terminal_request(kind)
            self.both(run, request)

        @rule(
            run=runs,
            step=st.sampled_from(STEP_IDS),
            kind=st.sampled_from(["step_created", "step_started", "step_completed", "step_failed", "step_retrying"]),
            retry=st.sampled_from([None, -3600, 3600]),
        )
        def step_event(self, run: str, step: str, kind: str, retry: int | None) -> None:
            extra: dict[str, Any] = {}
            if kind == "step_retrying" and retry is not None:
                extra["retry_after"] = datetime.now(UTC) + timedelta(seconds=retry)
            self.both(run, step_request(kind, step, **extra))

        @rule(
            run=runs,
            owner=runs,
            slot=st.sampled_from(HOOK_SLOTS),
            token=st.sampled_from(TOKENS),
            kind=st.sampled_from(HOOK_KINDS),
        )
        def hook_event(self, run: str, owner: str, slot: str, token: str, kind: str) -> None:
            """The hook id is ``owner``'s: when that is not ``run``, the event names another run's hook (EV-12)."""
            hook_id = f"{slot}_{owner[-6:]}"
            data = {"hook_created": {"token": token, "metadata": b"\x00m"}, "hook_received": {"payload": b"\x00p"}}
            self.both(run, hook_request(kind, hook_id, **data.get(kind, {})))

        @rule(run=runs, wait=st.sampled_from(WAIT_IDS), kind=st.sampled_from(["wait_created", "wait_completed"]))
        def wait_event(self, run: str, wait: str, kind: str) -> None:
            resume = datetime.now(UTC) + timedelta(minutes=5) if kind == "wait_created" else None
            self.both(run, wait_request(kind, wait, resume))

        @invariant()
        def entities_match_oracle(self) -> None:
            for run_id, run in self.oracle.runs.items():
                got = self.run(self.world.runs.get(run_id))
                assert comparable(got) == comparable(run), f"EV-1: run {run_id} differs from the oracle"
                events = self.run(all_events(self.world, run_id))
                want = [_event_key(e) for e in self.oracle.events[run_id]]
                assert [_event_key(e) for e in events] == want, f"EV-11: event log of {run_id} differs"
            for (run_id, step_id), step in self.oracle.steps.items():
                got_step = self.run(self.world.steps.get(run_id, step_id))
                assert comparable(got_step) == comparable(step), f"EV-8: step {step_id} differs from the oracle"
            for token in TOKENS:
                holder = next((h for h in self.oracle.hooks.values() if h.token == token), None)
                try:
                    got_hook = self.run(self.world.hooks.get_by_token(token))
                except HookNotFoundError:
                    assert holder is None, f"HK-3: token {token} lost its live hook {holder}"
                else:
                    assert comparable(got_hook) == comparable(holder), f"HK-1: token {token} held by {got_hook}"

    EventsMachine.harness = harness
    return EventsMachine


def queue_machine(harness: WorldHarness) -> type[RuleBasedStateMachine]:
    """Queue: idempotency keys before start, then deliveries judged as a history (Q-1..Q-3)."""

    class QueueMachine(_WorldMachine):
        def __init__(self) -> None:
            super().__init__()
            self._tmp = self._stack.enter_context(tempfile.TemporaryDirectory())
            self.probe = QueueProbe(Path(self._tmp) / "log")
            self.probe.attach(self.world)
            self.started = False
            self.enqueued: dict[str, str] = {}
            self.by_idem: dict[str, str] = {}
            self.counter = 0

        @rule(
            plan=st.sampled_from([("ack",), ("raise", "ack"), ("reschedule:0.1", "ack")]),
            idem=st.sampled_from([None, "k1", "k2"]),
        )
        def enqueue(self, plan: tuple[str, ...], idem: str | None) -> None:
            if self.started:
                idem = None  # "while not acked" is racy once consumption runs; keys are checked before start
            self.counter += 1
            key = f"m{self.counter}"
            sent = self.run(self.world.queue("__wkf_step_model", {"key": key}, idempotency_key=idem))
            if idem is not None and idem in self.by_idem:
                assert sent.message_id == self.by_idem[idem], "Q-3: same idempotency key, different message id"
                return
            assert sent.message_id not in self.enqueued.values(), "Q-2: message id reused"
            self.probe.plans[key] = plan
            self.enqueued[key] = sent.message_id
            if idem is not None:
                self.by_idem[idem] = sent.message_id

        @precondition(lambda self: not self.started)
        @rule()
        def start(self) -> None:
            self.run(self.world.start())
            self.started = True

        @precondition(lambda self: self.started)
        @rule()
        def drain(self) -> None:
            self.run(self.probe.wait_all_acked(list(self.enqueued), timeout=10))
            once = Capability.EFFECTIVELY_ONCE_DELIVERY in self.harness.capabilities
            problems = judge(self.enqueued, self.probe.log.entries()).problems(effectively_once=once)
            assert not problems, f"Q-1: {problems}"

        def teardown(self) -> None:
            try:
                if self.enqueued:  # every history is judged in full, also one that ended before a drain
                    if not self.started:
                        self.start()
                    self.drain()
            finally:
                super().teardown()

    QueueMachine.harness = harness
    return QueueMachine


def streams_machine(harness: WorldHarness) -> type[RuleBasedStateMachine]:
    """Streams: chunks, info and reads equal a list model (ST-1, ST-2)."""

    class StreamsMachine(_WorldMachine):
        def __init__(self) -> None:
            super().__init__()
            self.model: dict[str, list[bytes]] = {}
            self.closed: set[str] = set()

        @rule(name=st.sampled_from(["a", "b"]), chunk=st.binary(max_size=64))
        def write(self, name: str, chunk: bytes) -> None:
            if name in self.closed:
                return
            self.run(self.world.write_to_stream(name, "wrun_model", chunk))
            self.model.setdefault(name, []).append(chunk)

        @rule(name=st.sampled_from(["a", "b"]))
        def close(self, name: str) -> None:
            if name in self.closed:
                return
            self.run(self.world.close_stream(name, "wrun_model"))
            self.closed.add(name)
            self.model.setdefault(name, [])

        @rule(name=st.sampled_from(["a", "b"]), limit=st.integers(1, 4))
        def page_through(self, name: str, limit: int) -> None:
            pages = self.run(chunk_pages(self.world, name, "wrun_model", limit=limit))
            got = [c.data for page in pages for c in page.data]
            assert got == self.model.get(name, []), "ST-1: paged chunks differ from what was written"
            assert pages[-1].done == (name in self.closed), "ST-1: done flag wrong"

        @invariant()
        def info_and_reads_match(self) -> None:
            for name, chunks in self.model.items():
                info = self.run(self.world.get_stream_info(name, "wrun_model"))
                assert info.tail_index == len(chunks) - 1, "ST-1: tail index wrong"
                if name in self.closed:
                    read = self.run(read_stream(self.world, name))
                    assert read == chunks, "ST-1: read of a closed stream differs"

    StreamsMachine.harness = harness
    return StreamsMachine


def _event_key(event: Event) -> tuple[Any, ...]:
    return (event.event_type, event.correlation_id, event.event_data, event.spec_version)
