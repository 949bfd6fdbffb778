"""EV-1 / crash_safe: a writer SIGKILLed at random moments leaves every event whole or absent.

After each kill the World is reopened and its whole event log -- all runs, in
append order -- is replayed through the SDK's pure rules (``rules.decide``).
The replay must reproduce every stored event exactly, and the entities it
derives must equal the stored ones exactly: a run, step, live hook or wait
exists iff its events do, in the state they imply. An event without its entity
change, or the reverse, fails the comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reference_worlds.local import LocalWorld
from reference_worlds.local.database import DB_FILE
from reference_worlds.local.records import decode, event_from_row
from worlds_sdk import events as ev
from worlds_sdk import rules
from worlds_sdk.models import Event, EventRequest, Hook, Pagination, Run, Step, Wait

WRITER = Path(__file__).with_name("crash_writer.py")


@dataclass
class Replayed:
    runs: dict[str, Run] = field(default_factory=dict)
    steps: dict[tuple[str, str], Step] = field(default_factory=dict)
    hooks: dict[str, Hook] = field(default_factory=dict)
    disposed: dict[str, Hook] = field(default_factory=dict)
    waits: dict[tuple[str, str], Wait] = field(default_factory=dict)


def _minting(event_id: str) -> Callable[[str], str]:
    """The id minter for replaying one event: it mints the id the event was stored with."""
    return lambda _prefix: event_id


def replay(state: Replayed, log: list[Event]) -> None:
    """Fold ``log`` into ``state`` through ``rules.decide``; each event must be exactly what the rules produce."""
    for event in log:
        cid = event.correlation_id or ""
        data = event.event_data
        event_type = event.event_type
        if event_type == ev.HOOK_CONFLICT:  # the World writes it for a hook_created whose token was held
            event_type, data = ev.HOOK_CREATED, {"token": (data or {})["token"]}
        request = EventRequest(
            event_type=event_type, correlation_id=event.correlation_id, event_data=data, spec_version=event.spec_version
        )
        token = rules.requested_token(request)
        snapshot = rules.Snapshot(
            run=state.runs.get(event.run_id),
            step=state.steps.get((event.run_id, cid)),
            hook=state.hooks.get(cid) or state.disposed.get(cid),
            hook_disposed=cid in state.disposed,
            token_holder=next((h for h in state.hooks.values() if h.token == token), None),
            wait=state.waits.get((event.run_id, cid)),
        )
        effects = rules.decide(
            event.run_id,
            request,
            snapshot,
            now=event.created_at,
            world_spec_version=3,
            mint=_minting(event.event_id),
        )
        assert effects.events == (event,), f"stored event differs from what the rules produce: {event}"
        if effects.run is not None:
            state.runs[event.run_id] = effects.run
        if effects.step is not None:
            state.steps[(event.run_id, cid)] = effects.step
        if effects.wait is not None:
            state.waits[(event.run_id, cid)] = effects.wait
        if effects.hook is not None:
            state.hooks[cid] = effects.hook
        if effects.disposed_hook_id is not None:
            state.disposed[effects.disposed_hook_id] = state.hooks.pop(effects.disposed_hook_id)
        if effects.dispose_run_children:
            for hook_id in [h for h, hook in state.hooks.items() if hook.run_id == event.run_id]:
                state.disposed[hook_id] = state.hooks.pop(hook_id)
            state.waits = {k: w for k, w in state.waits.items() if k[0] != event.run_id}


async def _all_pages(fetch: Any, limit: int = 1000) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = await fetch(Pagination(limit=limit, cursor=cursor))
        items.extend(page.data)
        if not page.has_more:
            return items
        cursor = page.cursor


async def check_world(path: Path, checked: list[Event], state: Replayed) -> None:
    """Reopen the World after a crash and compare it with the replay of its log.

    ``checked`` is the log as the previous check saw it: it must still be there,
    unchanged, at the head of the log; only the events after it are replayed.
    """
    world = LocalWorld({"path": str(path)})
    try:
        with sqlite3.connect(path / DB_FILE) as conn:
            conn.row_factory = sqlite3.Row
            log = [event_from_row(r) for r in conn.execute("SELECT * FROM events ORDER BY seq")]
            steps = {
                (s.run_id, s.step_id): s for s in (decode(Step, r[0]) for r in conn.execute("SELECT body FROM steps"))
            }
            waits = {
                (w.run_id, w.wait_id): w for w in (decode(Wait, r[0]) for r in conn.execute("SELECT body FROM waits"))
            }
        assert log[: len(checked)] == checked, "events committed before an earlier crash changed or vanished"
        new = log[len(checked) :]
        replay(state, new)
        checked[:] = log

        assert {r.run_id: r for r in await _all_pages(lambda p: world.runs.list(pagination=p))} == state.runs
        assert {h.hook_id: h for h in await _all_pages(lambda p: world.hooks.list(pagination=p))} == state.hooks
        assert steps == state.steps
        assert waits == state.waits
        for run_id in {e.run_id for e in new}:  # the public reads agree, page by page
            listed = await _all_pages(lambda p, r=run_id: world.events.list(r, pagination=p), limit=7)
            assert listed == [e for e in log if e.run_id == run_id]
            run_steps = await _all_pages(lambda p, r=run_id: world.steps.list(r, pagination=p), limit=2)
            assert {(s.run_id, s.step_id): s for s in run_steps} == {k: s for k, s in steps.items() if k[0] == run_id}
    finally:
        await world.close()


class ForkServer:
    """``crash_writer.py`` in a subprocess: forks writer processes on demand (see its docstring)."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer, f"the fork server died: {self.proc.stderr.read()}"
        return answer

    def close(self) -> str:
        """Stop the server; return what the writers printed to stderr."""
        if self.proc.returncode is not None:
            return ""
        _, errors = self.proc.communicate()
        return errors


def crash_repeatedly(path: Path, kills: int, max_delay: float, seed: int, fork: str = "fork") -> int:
    """Fork a writer, SIGKILL it after a random delay, check the World; ``kills`` times. Returns the log size.

    ``fork="forkmany"`` forks a process of 4 concurrent writers, whose events are group-committed.
    """
    rng = random.Random(seed)
    checked: list[Event] = []
    state = Replayed()
    server = ForkServer(path)
    try:
        for kill in range(kills):
            # Every other crash moment counts from the writer's first commit, so writes are
            # crashed into however slow the start-up; the others from the fork, so a crash may
            # also land while the World is opened (or, the first time, created).
            committed = " committed" if kill % 2 else ""
            pid = int(server.ask(f"{fork} {rng.randrange(1 << 30)}{committed}"))
            time.sleep(rng.uniform(0, max_delay))  # the crash moment, not a wait for a condition
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            assert server.ask(f"reap {pid}") == f"signal {signal.SIGKILL}", "the writer died on its own"
            asyncio.run(check_world(path, checked, state))
    except AssertionError as exc:
        exc.add_note(f"writers' stderr:\n{server.close()}")
        raise
    finally:
        server.close()
    return len(checked)


def test_sigkilled_writer_leaves_every_event_whole_or_absent(tmp_path: Path) -> None:
    events = crash_repeatedly(tmp_path / "world", kills=20, max_delay=0.15, seed=1)
    assert events > 0, "the writer never committed anything: the test proved nothing"


def test_sigkilled_group_committing_writers_leave_every_event_whole_or_absent(tmp_path: Path) -> None:
    events = crash_repeatedly(tmp_path / "world", kills=20, max_delay=0.15, seed=3, fork="forkmany")
    assert events > 0, "the writers never committed anything: the test proved nothing"


@pytest.mark.soak
def test_soak_sigkilled_writer_leaves_every_event_whole_or_absent(tmp_path: Path) -> None:
    events = crash_repeatedly(tmp_path / "world", kills=300, max_delay=1.0, seed=2)
    assert events > 0
