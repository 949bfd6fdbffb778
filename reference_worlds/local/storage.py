"""The Storage groups of the local World: reads, and the one write path ``events.create``.

Each read is one read transaction (one snapshot); ``events.create`` is one write
transaction (see :mod:`.event_writer`). Default orders: events in append order
and runs and steps newest first (as upstream), hooks oldest first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from worlds_sdk import events as ev
from worlds_sdk import rules
from worlds_sdk.errors import (
    EventNotFoundError,
    HookNotFoundError,
    StepNotFoundError,
    WorkflowRunNotFoundError,
)
from worlds_sdk.models import (
    Event,
    EventRequest,
    EventResult,
    Hook,
    Page,
    Pagination,
    ResolveData,
    Run,
    RunStatus,
    Step,
)
from worlds_sdk.pagination import check_resolve_data
from worlds_sdk.validation import validate_request

from .database import Database
from .event_writer import create_event
from .pages import Keyset, page_of
from .records import decode, event_from_row

Payloaded = TypeVar("Payloaded", Run, Step, Hook)

DEFAULT_PAGE = Pagination()

RUNS = Keyset(("created_us", "run_id"), "desc")
STEPS = Keyset(("created_us", "step_id"), "desc")
HOOKS = Keyset(("created_us", "hook_id"), "asc")
EVENTS = Keyset(("seq",), "asc")


def _stripped(cls: type[Payloaded], resolve_data: ResolveData) -> Callable[[sqlite3.Row], Payloaded]:
    """A row builder: decode the body, then strip payloads for ``resolve_data='none'``."""

    def build(row: sqlite3.Row) -> Payloaded:
        return ev.strip_entity(decode(cls, row["body"]), resolve_data)

    return build


class LocalRuns:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, run_id: str, *, resolve_data: ResolveData = "all") -> Run:
        check_resolve_data(resolve_data)
        row = await self._db.read(lambda c: c.execute("SELECT body FROM runs WHERE run_id = ?", (run_id,)).fetchone())
        if row is None:
            raise WorkflowRunNotFoundError(f"workflow run {run_id!r} does not exist")
        return ev.strip_entity(decode(Run, row["body"]), resolve_data)

    async def list(
        self,
        *,
        workflow_name: str | None = None,
        status: RunStatus | None = None,
        pagination: Pagination = DEFAULT_PAGE,
        resolve_data: ResolveData = "all",
    ) -> Page[Run]:
        check_resolve_data(resolve_data)
        where, params = [], []
        if workflow_name is not None:
            where.append("workflow_name = ?")
            params.append(workflow_name)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        build = _stripped(Run, resolve_data)
        return await self._db.read(lambda c: page_of(c, RUNS, "SELECT * FROM runs", where, params, pagination, build))


class LocalSteps:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, run_id: str | None, step_id: str, *, resolve_data: ResolveData = "all") -> Step:
        """The step; with ``run_id=None`` the step id is looked up across runs (the oldest match wins)."""
        check_resolve_data(resolve_data)
        params: tuple[str, ...]
        if run_id is None:
            sql, params = "SELECT body FROM steps WHERE step_id = ? ORDER BY created_us LIMIT 1", (step_id,)
        else:
            sql, params = "SELECT body FROM steps WHERE run_id = ? AND step_id = ?", (run_id, step_id)
        row = await self._db.read(lambda c: c.execute(sql, params).fetchone())
        if row is None:
            raise StepNotFoundError(f"step {step_id!r} does not exist" + (f" in run {run_id!r}" if run_id else ""))
        return ev.strip_entity(decode(Step, row["body"]), resolve_data)

    async def list(
        self, run_id: str, *, pagination: Pagination = DEFAULT_PAGE, resolve_data: ResolveData = "all"
    ) -> Page[Step]:
        check_resolve_data(resolve_data)
        build = _stripped(Step, resolve_data)
        return await self._db.read(
            lambda c: page_of(c, STEPS, "SELECT * FROM steps", ["run_id = ?"], [run_id], pagination, build)
        )


class LocalEvents:
    def __init__(self, db: Database, spec_version: int) -> None:
        self._db = db
        self._spec_version = spec_version

    async def create(
        self, run_id: str | None, request: EventRequest, *, resolve_data: ResolveData = "all"
    ) -> EventResult:
        """Validate, decide and apply one event in one write transaction (EV-1); malformed input writes nothing."""
        check_resolve_data(resolve_data)
        validate_request(request)
        now = datetime.now(UTC)
        target = rules.resolve_run_id(run_id, request, now)
        result = await self._db.write(lambda c: create_event(c, target, request, now, self._spec_version))
        return ev.strip_result(result, resolve_data)

    async def get(self, run_id: str, event_id: str, *, resolve_data: ResolveData = "all") -> Event:
        check_resolve_data(resolve_data)
        sql = "SELECT * FROM events WHERE event_id = ? AND run_id = ?"
        row = await self._db.read(lambda c: c.execute(sql, (event_id, run_id)).fetchone())
        if row is None:
            raise EventNotFoundError(f"event {event_id!r} does not exist in run {run_id!r}")
        return ev.strip_event(event_from_row(row), resolve_data)

    async def list(
        self, run_id: str, *, pagination: Pagination = DEFAULT_PAGE, resolve_data: ResolveData = "all"
    ) -> Page[Event]:
        """A run's events in append order; a cursor from the last page later yields newer events (EV-11)."""
        return await self._list(["run_id = ?"], [run_id], pagination, resolve_data)

    async def list_by_correlation_id(
        self,
        correlation_id: str,
        *,
        run_id: str | None = None,
        pagination: Pagination = DEFAULT_PAGE,
        resolve_data: ResolveData = "all",
    ) -> Page[Event]:
        where, params = ["correlation_id = ?"], [correlation_id]
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        return await self._list(where, params, pagination, resolve_data)

    async def _list(
        self, where: Sequence[str], params: Sequence[str], pagination: Pagination, resolve_data: ResolveData
    ) -> Page[Event]:
        check_resolve_data(resolve_data)

        def build(row: sqlite3.Row) -> Event:
            return ev.strip_event(event_from_row(row), resolve_data)

        return await self._db.read(
            lambda c: page_of(c, EVENTS, "SELECT * FROM events", where, params, pagination, build)
        )


class LocalHooks:
    """Live hooks only: a disposed hook is a tombstone that reads as not found."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, hook_id: str, *, resolve_data: ResolveData = "all") -> Hook:
        return await self._one("hook_id = ?", hook_id, resolve_data, f"no live hook has id {hook_id!r}")

    async def get_by_token(self, token: str, *, resolve_data: ResolveData = "all") -> Hook:
        return await self._one("token = ?", token, resolve_data, "no live hook has this token")

    async def list(
        self,
        *,
        run_id: str | None = None,
        pagination: Pagination = DEFAULT_PAGE,
        resolve_data: ResolveData = "all",
    ) -> Page[Hook]:
        check_resolve_data(resolve_data)
        where, params = ["disposed = 0"], []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        build = _stripped(Hook, resolve_data)
        return await self._db.read(lambda c: page_of(c, HOOKS, "SELECT * FROM hooks", where, params, pagination, build))

    async def _one(self, condition: str, value: str, resolve_data: ResolveData, missing: str) -> Hook:
        check_resolve_data(resolve_data)
        sql = f"SELECT body FROM hooks WHERE {condition} AND disposed = 0"
        row = await self._db.read(lambda c: c.execute(sql, (value,)).fetchone())
        if row is None:
            raise HookNotFoundError(missing)
        return ev.strip_entity(decode(Hook, row["body"]), resolve_data)
