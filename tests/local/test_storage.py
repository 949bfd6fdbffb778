"""The local World's storage beyond the conformance suite: its own guarantees and edge cases."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conformance.builders import hook_request, new_run, new_step, run_created_request, step_request, terminal_request
from reference_worlds.local import LocalWorld, event_writer
from reference_worlds.local.database import DB_FILE
from reference_worlds.local.records import to_us
from worlds_sdk.errors import EntityConflictError, HookNotFoundError, StepNotFoundError, ValidationError
from worlds_sdk.ids import new_id
from worlds_sdk.models import EventRequest, Pagination
from worlds_sdk.rules import Snapshot


def with_world(config: dict[str, Any], body: Callable[[LocalWorld], Awaitable[None]]) -> None:
    async def main() -> None:
        world = LocalWorld(config)
        try:
            await body(world)
        finally:
            await world.close()

    asyncio.run(main())


def count_rows(config: dict[str, Any]) -> dict[str, int]:
    with sqlite3.connect(Path(config["path"]) / DB_FILE) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "runs", "steps", "hooks")
        }


MALFORMED: list[tuple[str | None, Any]] = [
    (None, EventRequest(event_type="no_such_event")),
    (None, EventRequest(event_type="run_created", event_data={"deployment_id": "d", "workflow_name": "w"})),
    (None, EventRequest(event_type="run_created", event_data={"deployment_id": "d", "workflow_name": "w", "input": 1})),
    (None, EventRequest(event_type="run_started")),
    ("wrun_not-a-ulid", run_created_request()),
    ("wrun_" + "0" * 26, run_created_request()),  # a ULID from 1970: far outside the 24 h window
    (None, {"event_type": "run_created"}),
    ("RUN", EventRequest(event_type="step_created", correlation_id="s", event_data={"input": b""})),
    ("RUN", EventRequest(event_type="step_created", correlation_id="", event_data={"step_name": "a", "input": b""})),
    ("RUN", EventRequest(event_type="hook_created", correlation_id="h", event_data={"token": 7})),
    ("RUN", EventRequest(event_type="step_completed", correlation_id="s", event_data={"result": float("nan")})),
    ("RUN", EventRequest(event_type="hook_conflict", correlation_id="h", event_data={"token": "t"})),
]


@pytest.mark.parametrize(("run_id", "request_"), MALFORMED)
def test_a_malformed_request_is_a_validation_error_and_writes_nothing(
    config: dict[str, Any], run_id: str | None, request_: Any
) -> None:
    async def body(world: LocalWorld) -> None:
        run = await new_run(world)
        before = count_rows(config)
        with pytest.raises(ValidationError):
            await world.events.create(run.run_id if run_id == "RUN" else run_id, request_)
        assert count_rows(config) == before

    with_world(config, body)


@pytest.mark.parametrize(
    "pagination",
    [Pagination(limit=0), Pagination(limit=1001), Pagination(cursor="nonsense"), Pagination(sort_order="up")],  # type: ignore[arg-type]
)
def test_bad_pagination_is_a_validation_error(config: dict[str, Any], pagination: Pagination) -> None:
    async def body(world: LocalWorld) -> None:
        run = await new_run(world)
        for call in (
            world.runs.list(pagination=pagination),
            world.steps.list(run.run_id, pagination=pagination),
            world.events.list(run.run_id, pagination=pagination),
            world.hooks.list(pagination=pagination),
        ):
            with pytest.raises(ValidationError):
                await call

    with_world(config, body)


def test_created_at_never_goes_back_even_if_the_clock_does(config: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        run = await new_run(world)
        future = datetime.now(UTC) + timedelta(hours=1)  # as if another writer's clock ran ahead
        with sqlite3.connect(Path(config["path"]) / DB_FILE) as conn:
            conn.execute(
                "INSERT INTO events (run_id, event_id, event_type, spec_version, created_us) VALUES (?, ?, ?, 3, ?)",
                ("wrun_elsewhere", new_id("evnt"), "run_cancelled", to_us(future)),
            )
        started = await world.events.create(run.run_id, EventRequest(event_type="run_started"))
        assert started.event is not None and started.event.created_at > future
        events = (await world.events.list(run.run_id)).data
        assert [e.created_at for e in events] == sorted(e.created_at for e in events)

    with_world(config, body)


def test_the_token_index_turns_a_missed_holder_into_a_conflict_not_a_crash(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Belt and braces: even if the snapshot missed the token's holder, the unique index catches it."""
    read_snapshot = event_writer.read_snapshot

    def blind(*args: Any) -> Snapshot:
        snapshot = read_snapshot(*args)
        return Snapshot(run=snapshot.run, hook=snapshot.hook, hook_disposed=snapshot.hook_disposed)

    async def body(world: LocalWorld) -> None:
        first, second = await new_run(world), await new_run(world)
        await world.events.create(first.run_id, hook_request("hook_created", "h1", token="tok"))
        monkeypatch.setattr(event_writer, "read_snapshot", blind)
        result = await world.events.create(second.run_id, hook_request("hook_created", "h2", token="tok"))
        assert result.event is not None and result.event.event_type == "hook_conflict"
        assert result.event.event_data == {"token": "tok", "conflicting_run_id": first.run_id}
        assert result.hook is None
        assert [h.hook_id for h in (await world.hooks.list()).data] == ["h1"]

    with_world(config, body)


def test_a_disposed_hook_is_a_tombstone_that_frees_its_token(config: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        run, other = await new_run(world), await new_run(world)
        await world.events.create(run.run_id, hook_request("hook_created", "h1", token="tok"))
        await world.events.create(run.run_id, hook_request("hook_disposed", "h1"))
        with pytest.raises(EntityConflictError):
            await world.events.create(run.run_id, hook_request("hook_disposed", "h1"))
        with pytest.raises(EntityConflictError):
            await world.events.create(run.run_id, hook_request("hook_created", "h1", token="tok"))
        with pytest.raises(HookNotFoundError):
            await world.hooks.get("h1")
        taken = await world.events.create(other.run_id, hook_request("hook_created", "h2", token="tok"))
        assert taken.hook is not None and (await world.hooks.get_by_token("tok")).hook_id == "h2"

    with_world(config, body)


def test_a_step_is_found_across_runs_without_its_run_id(config: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        run = await new_run(world)
        await new_step(world, run.run_id, "step_x", started=True)
        step = await world.steps.get(None, "step_x", resolve_data="none")
        assert (step.run_id, step.status, step.attempt, step.input) == (run.run_id, "running", 1, None)
        with pytest.raises(StepNotFoundError):
            await world.steps.get(None, "step_missing")

    with_world(config, body)


def test_runs_list_filters_and_pages_newest_first_by_default(config: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        ids = []
        for name in ("alpha", "beta", "alpha", "alpha", "beta"):
            result = await world.events.create(None, run_created_request(workflow_name=name))
            assert result.run is not None
            ids.append(result.run.run_id)
        await world.events.create(ids[0], terminal_request("cancelled"))

        pages, cursor = [], None
        while True:
            page = await world.runs.list(workflow_name="alpha", pagination=Pagination(limit=2, cursor=cursor))
            pages.append([r.run_id for r in page.data])
            if not page.has_more:
                break
            cursor = page.cursor
        assert pages == [[ids[3], ids[2]], [ids[0]]]
        cancelled = await world.runs.list(status="cancelled")
        assert [r.run_id for r in cancelled.data] == [ids[0]]
        oldest_first = await world.runs.list(pagination=Pagination(sort_order="asc"), resolve_data="none")
        assert [r.run_id for r in oldest_first.data] == ids
        assert all(r.input is None for r in oldest_first.data)

    with_world(config, body)


def test_a_cursor_at_the_end_of_a_list_yields_what_is_appended_later(config: dict[str, Any]) -> None:
    async def body(world: LocalWorld) -> None:
        run = await new_run(world)
        end = await world.events.list(run.run_id)
        steps_end = await world.steps.list(run.run_id, pagination=Pagination(sort_order="asc"))
        await new_step(world, run.run_id, "later")
        newer = await world.events.list(run.run_id, pagination=Pagination(cursor=end.cursor))
        assert [e.event_type for e in newer.data] == ["step_created"]
        newer_steps = await world.steps.list(
            run.run_id, pagination=Pagination(sort_order="asc", cursor=steps_end.cursor)
        )
        assert [s.step_id for s in newer_steps.data] == ["later"]

    with_world(config, body)


def test_two_instances_on_one_directory_race_through_one_write_lock(config: dict[str, Any]) -> None:
    """Two World objects (two connections) race ``step_completed``: exactly one wins (EV-8)."""

    async def body(world: LocalWorld) -> None:
        other = LocalWorld(config)
        try:
            run = await new_run(world, started=True)
            await new_step(world, run.run_id, "s", started=True)
            outcomes = await asyncio.gather(
                *(w.events.create(run.run_id, step_request("step_completed", "s")) for w in (world, other) * 5),
                return_exceptions=True,
            )
            assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
            assert all(isinstance(o, EntityConflictError) for o in outcomes if isinstance(o, BaseException))
            events = (await other.events.list(run.run_id)).data
            assert [e.event_type for e in events].count("step_completed") == 1
        finally:
            await other.close()

    with_world(config, body)
