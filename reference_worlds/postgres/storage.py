"""The Storage groups of the Postgres World: reads, and the one write path ``events.create``.

``events.create`` validates the request in Python (the shipped JSON Schema, EV-3
run ids), then makes ONE call to ``create_event_v1``, which applies the rules of
``worlds_sdk.rules`` natively in one transaction. Nothing is checked in Python
and then acted on in SQL: the checks that depend on state happen under the run's
row lock. List defaults follow upstream: events in append order, runs and steps
newest first, hooks oldest first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from worlds_sdk import SPEC_VERSION, rules
from worlds_sdk import events as ev
from worlds_sdk.codec import wire_text
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
from .nul_escape import escape_json
from .pages import page_of
from .queries import query
from .rows import (
    ENTITY_COLUMNS,
    EVENT_COLUMNS,
    entity_of,
    event_from_row,
    hook_from_row,
    result_from_values,
    run_from_row,
    step_from_row,
)

DEFAULT_PAGE = Pagination()


@cache
def create_event_query(entity: str) -> str:
    """Query ``create_event`` returning the event and the ``entity`` kind (``run``, ``step``, ``hook``, ``wait``)."""
    columns = [f"(e).{c}" for c in EVENT_COLUMNS] + [f"(x).{c}" for c in ENTITY_COLUMNS[entity]]
    return query("create_event").replace("{columns}", ", ".join(columns)).replace("{entity}", entity)


class PostgresRuns:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, run_id: str, *, resolve_data: ResolveData = "all") -> Run:
        check_resolve_data(resolve_data)
        row = await self._db.fetchone(query("get_run"), {"run_id": run_id})
        if row is None:
            raise WorkflowRunNotFoundError(f"workflow run {run_id!r} does not exist")
        return ev.strip_entity(run_from_row(row), resolve_data)

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
            where.append("workflow_name = %s")
            params.append(workflow_name)
        if status is not None:
            where.append("status = %s")
            params.append(status)
        return await page_of(
            self._db,
            "runs_page",
            where,
            params,
            pagination,
            "desc",
            lambda r: ev.strip_entity(run_from_row(r), resolve_data),
        )


class PostgresSteps:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, run_id: str | None, step_id: str, *, resolve_data: ResolveData = "all") -> Step:
        check_resolve_data(resolve_data)
        if run_id is None:
            row = await self._db.fetchone(query("find_step"), {"step_id": step_id})
        else:
            row = await self._db.fetchone(query("get_step"), {"run_id": run_id, "step_id": step_id})
        if row is None:
            where = f" in run {run_id!r}" if run_id is not None else ""
            raise StepNotFoundError(f"step {step_id!r} does not exist{where}")
        return ev.strip_entity(step_from_row(row), resolve_data)

    async def list(
        self, run_id: str, *, pagination: Pagination = DEFAULT_PAGE, resolve_data: ResolveData = "all"
    ) -> Page[Step]:
        check_resolve_data(resolve_data)
        return await page_of(
            self._db,
            "steps_page",
            ["run_id = %s"],
            [run_id],
            pagination,
            "desc",
            lambda r: ev.strip_entity(step_from_row(r), resolve_data),
        )


class PostgresEvents:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, run_id: str | None, request: EventRequest, *, resolve_data: ResolveData = "all"
    ) -> EventResult:
        """Validate in Python, then apply and append in one call to ``create_event_v1`` (EV-1)."""
        check_resolve_data(resolve_data)
        wire = validate_request(request)
        run_id = rules.resolve_run_id(run_id, request, datetime.now(UTC))
        entity = entity_of(request.event_type)
        values = await self._db.fetch_values(
            create_event_query(entity),
            {
                "run_id": run_id,
                "event_type": request.event_type,
                "correlation_id": request.correlation_id,
                "data": None if request.event_data is None else escape_json(wire_text(wire["event_data"])),
                "spec_version": request.spec_version,
                "world_spec_version": SPEC_VERSION,
            },
        )
        assert values is not None
        return ev.strip_result(result_from_values(entity, values), resolve_data)

    async def get(self, run_id: str, event_id: str, *, resolve_data: ResolveData = "all") -> Event:
        check_resolve_data(resolve_data)
        row = await self._db.fetchone(query("get_event"), {"run_id": run_id, "event_id": event_id})
        if row is None:
            raise EventNotFoundError(f"event {event_id!r} does not exist in run {run_id!r}")
        return ev.strip_event(event_from_row(row), resolve_data)

    async def list(
        self, run_id: str, *, pagination: Pagination = DEFAULT_PAGE, resolve_data: ResolveData = "all"
    ) -> Page[Event]:
        check_resolve_data(resolve_data)
        return await page_of(
            self._db,
            "events_page",
            ["run_id = %s"],
            [run_id],
            pagination,
            "asc",
            lambda r: ev.strip_event(event_from_row(r), resolve_data),
        )

    async def list_by_correlation_id(
        self,
        correlation_id: str,
        *,
        run_id: str | None = None,
        pagination: Pagination = DEFAULT_PAGE,
        resolve_data: ResolveData = "all",
    ) -> Page[Event]:
        check_resolve_data(resolve_data)
        where, params = ["correlation_id = %s"], [correlation_id]
        if run_id is not None:
            where.append("run_id = %s")
            params.append(run_id)
        return await page_of(
            self._db,
            "events_page",
            where,
            params,
            pagination,
            "asc",
            lambda r: ev.strip_event(event_from_row(r), resolve_data),
        )


class PostgresHooks:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, hook_id: str, *, resolve_data: ResolveData = "all") -> Hook:
        check_resolve_data(resolve_data)
        row = await self._db.fetchone(query("get_hook"), {"hook_id": hook_id})
        if row is None:
            raise HookNotFoundError(f"hook {hook_id!r} does not exist or was disposed")
        return ev.strip_entity(hook_from_row(row), resolve_data)

    async def get_by_token(self, token: str, *, resolve_data: ResolveData = "all") -> Hook:
        check_resolve_data(resolve_data)
        row = await self._db.fetchone(query("get_hook_by_token"), {"token": token})
        if row is None:
            raise HookNotFoundError("no live hook has this token")
        return ev.strip_entity(hook_from_row(row), resolve_data)

    async def list(
        self,
        *,
        run_id: str | None = None,
        pagination: Pagination = DEFAULT_PAGE,
        resolve_data: ResolveData = "all",
    ) -> Page[Hook]:
        check_resolve_data(resolve_data)
        where, params = ["disposed_at IS NULL"], []
        if run_id is not None:
            where.append("run_id = %s")
            params.append(run_id)
        return await page_of(
            self._db,
            "hooks_page",
            where,
            params,
            pagination,
            "asc",
            lambda r: ev.strip_entity(hook_from_row(r), resolve_data),
        )
