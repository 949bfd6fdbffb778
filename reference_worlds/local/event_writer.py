"""``events.create`` inside one SQLite write transaction: snapshot, decide, apply.

Everything here runs on the World's database thread, inside the ``BEGIN
IMMEDIATE`` transaction :meth:`Database.write` opened. That transaction holds
SQLite's write lock from its first statement, so no other writer -- thread or
process -- can change anything between reading the snapshot and writing the
effects. The check-then-act of :func:`worlds_sdk.rules.decide` is safe ONLY
because of that; do not split it across transactions.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import datetime

from worlds_sdk import codec, rules
from worlds_sdk.models import Event, EventRequest, EventResult, Hook, Run, Step, Wait
from worlds_sdk.rules import Effects, Snapshot

from .records import Entity, decode, encode, from_us, to_us


def create_event(
    conn: sqlite3.Connection, run_id: str, request: EventRequest, now: datetime, spec_version: int
) -> EventResult:
    """Decide and apply one event; raises the typed error of :func:`rules.decide` with nothing written."""
    now = _monotonic(conn, now)
    snapshot = read_snapshot(conn, run_id, request)
    effects = rules.decide(run_id, request, snapshot, now=now, world_spec_version=spec_version)
    try:
        _apply(conn, run_id, effects)
    except sqlite3.IntegrityError as exc:
        if effects.hook is None or "hooks.token" not in str(exc):
            raise
        # The unique index on live tokens is the last word on HK-1: if it saw a holder
        # the snapshot missed, the outcome is the HK-2 conflict event, never a crash.
        # The failed INSERT was the first write of _apply, so nothing is half-applied.
        holder = _live_hook_by_token(conn, effects.hook.token)
        snapshot = dataclasses.replace(snapshot, token_holder=holder)
        effects = rules.decide(run_id, request, snapshot, now=now, world_spec_version=spec_version)
        _apply(conn, run_id, effects)
    return effects.result


def read_snapshot(conn: sqlite3.Connection, run_id: str, request: EventRequest) -> Snapshot:
    """What :func:`rules.decide` needs, read inside the caller's write transaction."""
    run = _one(conn, Run, "SELECT body FROM runs WHERE run_id = ?", run_id)
    step = hook = wait = token_holder = None
    hook_disposed = False
    correlation_id = request.correlation_id or ""
    if rules.needs_step(request):
        step = _one(conn, Step, "SELECT body FROM steps WHERE run_id = ? AND step_id = ?", run_id, correlation_id)
    if rules.needs_hook(request):
        row = conn.execute("SELECT body, disposed FROM hooks WHERE hook_id = ?", (correlation_id,)).fetchone()
        if row is not None:  # live or tombstone, of any run: decide() tells them apart (HK-4, EV-12)
            hook_disposed = bool(row["disposed"])
            hook = decode(Hook, row["body"])
        token = rules.requested_token(request)
        if token is not None:
            token_holder = _live_hook_by_token(conn, token)
    if rules.needs_wait(request):
        wait = _one(conn, Wait, "SELECT body FROM waits WHERE run_id = ? AND wait_id = ?", run_id, correlation_id)
    return Snapshot(run=run, step=step, hook=hook, hook_disposed=hook_disposed, token_holder=token_holder, wait=wait)


def _monotonic(conn: sqlite3.Connection, now: datetime) -> datetime:
    """``now``, but strictly after the newest stored event, so created_at never goes back along the log
    (and entity creation times are unique, which keeps the list cursors exact)."""
    row = conn.execute("SELECT created_us FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    if row is not None and to_us(now) <= row[0]:
        return from_us(row[0] + 1)
    return now


def _apply(conn: sqlite3.Connection, run_id: str, effects: Effects) -> None:
    if effects.hook is not None:  # first, so a token conflict leaves nothing half-written
        hook = effects.hook
        conn.execute(
            "INSERT INTO hooks (hook_id, run_id, token, created_us, body) VALUES (?, ?, ?, ?, ?)",
            (hook.hook_id, hook.run_id, hook.token, to_us(hook.created_at), encode(hook)),
        )
    for event in effects.events:
        _append(conn, event)
    if effects.run is not None:
        run = effects.run
        conn.execute(
            "INSERT INTO runs (run_id, workflow_name, status, created_us, body) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, body = excluded.body",
            (run.run_id, run.workflow_name, run.status, to_us(run.created_at), encode(run)),
        )
    if effects.step is not None:
        step = effects.step
        conn.execute(
            "INSERT INTO steps (run_id, step_id, created_us, body) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (run_id, step_id) DO UPDATE SET body = excluded.body",
            (step.run_id, step.step_id, to_us(step.created_at), encode(step)),
        )
    if effects.wait is not None:
        wait = effects.wait
        conn.execute(
            "INSERT INTO waits (run_id, wait_id, body) VALUES (?, ?, ?)"
            " ON CONFLICT (run_id, wait_id) DO UPDATE SET body = excluded.body",
            (wait.run_id, wait.wait_id, encode(wait)),
        )
    if effects.disposed_hook_id is not None:
        conn.execute("UPDATE hooks SET disposed = 1 WHERE hook_id = ?", (effects.disposed_hook_id,))
    if effects.dispose_run_children:  # HK-3: in the same transaction as the terminal event
        conn.execute("UPDATE hooks SET disposed = 1 WHERE run_id = ? AND disposed = 0", (run_id,))
        conn.execute("DELETE FROM waits WHERE run_id = ?", (run_id,))


def _append(conn: sqlite3.Connection, event: Event) -> None:
    conn.execute(
        "INSERT INTO events (run_id, event_id, event_type, correlation_id, spec_version, created_us, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            event.run_id,
            event.event_id,
            event.event_type,
            event.correlation_id,
            event.spec_version,
            to_us(event.created_at),
            None if event.event_data is None else codec.dumps(event.event_data),
        ),
    )


def _live_hook_by_token(conn: sqlite3.Connection, token: str) -> Hook | None:
    return _one(conn, Hook, "SELECT body FROM hooks WHERE token = ? AND disposed = 0", token)


def _one(conn: sqlite3.Connection, cls: type[Entity], sql: str, *params: str) -> Entity | None:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else decode(cls, row["body"])
