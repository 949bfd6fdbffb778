"""The races upstream's Postgres world lost, run against real concurrent connections and processes.

Upstream wrote without transactions and shipped: 12 processes all owning one hook
token, duplicate step_created events, a step_started landing after
step_completed. Here the writers really race: separate OS processes released at
once (``conftest.race``), or separate World objects (separate connections) in one
event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from reference_worlds.postgres import PostgresWorld
from worlds_sdk.errors import EntityConflictError
from worlds_sdk.ids import new_id
from worlds_sdk.models import EventRequest, Pagination

pytestmark = pytest.mark.postgres

Race = Callable[[dict[str, Any], list[dict[str, Any]]], list[dict[str, Any]]]
RUN = EventRequest(event_type="run_created", event_data={"deployment_id": "d", "workflow_name": "wf", "input": b""})
STARTED = EventRequest(event_type="run_started")


async def _new_runs(config: dict[str, Any], n: int, *, steps: tuple[str, ...] = ()) -> list[str]:
    world = PostgresWorld(config)
    try:
        run_ids = []
        for _ in range(n):
            result = await world.events.create(None, RUN)
            assert result.run is not None
            run_ids.append(result.run.run_id)
            await world.events.create(result.run.run_id, STARTED)
            for step_id in steps:
                await world.events.create(
                    result.run.run_id,
                    EventRequest(
                        event_type="step_created", correlation_id=step_id, event_data={"step_name": "s", "input": b""}
                    ),
                )
                await world.events.create(
                    result.run.run_id, EventRequest(event_type="step_started", correlation_id=step_id)
                )
        return run_ids
    finally:
        await world.close()


async def _events_of(config: dict[str, Any], run_id: str) -> list[tuple[str, str | None]]:
    world = PostgresWorld(config)
    try:
        page = await world.events.list(run_id, pagination=Pagination(limit=1000))
        return [(e.event_type, e.correlation_id) for e in page.data]
    finally:
        await world.close()


def test_HK1_twelve_processes_one_token_exactly_one_hook(pg_config: dict[str, Any], race: Race) -> None:
    run_ids = asyncio.run(_new_runs(pg_config, 12))
    ops = [
        {
            "op": "create_event",
            "run_id": run_id,
            "event_type": "hook_created",
            "correlation_id": f"hook-{i}",
            "event_data": {"token": "the-one-token"},
        }
        for i, run_id in enumerate(run_ids)
    ]
    outcomes = race(pg_config, ops)
    assert all("ok" in o for o in outcomes), outcomes
    kinds = [o["ok"]["event_type"] for o in outcomes]
    assert kinds.count("hook_created") == 1, kinds
    assert kinds.count("hook_conflict") == 11, kinds
    owner = run_ids[kinds.index("hook_created")]
    for outcome in outcomes:
        if outcome["ok"]["event_type"] == "hook_conflict":
            assert outcome["ok"]["event_data"] == {"token": "the-one-token", "conflicting_run_id": owner}

    async def check() -> None:
        world = PostgresWorld(pg_config)
        try:
            assert (await world.hooks.get_by_token("the-one-token")).run_id == owner
            assert [h.run_id for h in (await world.hooks.list()).data] == [owner]
        finally:
            await world.close()

    asyncio.run(check())


def test_EV8_concurrent_step_completed_from_processes_one_winner(pg_config: dict[str, Any], race: Race) -> None:
    (run_id,) = asyncio.run(_new_runs(pg_config, 1, steps=("s1",)))
    ops = [
        {
            "op": "create_event",
            "run_id": run_id,
            "event_type": "step_completed" if i % 2 else "step_failed",
            "correlation_id": "s1",
            "event_data": {"result": {"$b": ""}} if i % 2 else {"error": f"e{i}"},
        }
        for i in range(6)
    ]
    outcomes = race(pg_config, ops)
    winners = [o for o in outcomes if "ok" in o]
    assert len(winners) == 1, outcomes
    assert sorted(o.get("error", "") for o in outcomes if "ok" not in o) == ["EntityConflictError"] * 5
    finished = [e for e in asyncio.run(_events_of(pg_config, run_id)) if e[0] in ("step_completed", "step_failed")]
    assert finished == [(winners[0]["ok"]["event_type"], "s1")]


async def _race_in_process(config: dict[str, Any], run_id: str, requests: list[EventRequest]) -> list[Any]:
    worlds = [PostgresWorld(config) for _ in requests]
    try:
        for world in worlds:  # open every pool first, so the race is about the writes
            await world.runs.get(run_id)
        return list(
            await asyncio.gather(
                *(w.events.create(run_id, r) for w, r in zip(worlds, requests, strict=True)), return_exceptions=True
            )
        )
    finally:
        await asyncio.gather(*(w.close() for w in worlds))


def test_EV8_duplicate_step_created_race_appends_one_event(pg_config: dict[str, Any]) -> None:
    (run_id,) = asyncio.run(_new_runs(pg_config, 1))
    created = EventRequest(event_type="step_created", correlation_id="dup", event_data={"step_name": "s", "input": b""})
    outcomes = asyncio.run(_race_in_process(pg_config, run_id, [created] * 6))
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, EntityConflictError) for o in outcomes if isinstance(o, BaseException)), outcomes
    assert asyncio.run(_events_of(pg_config, run_id)).count(("step_created", "dup")) == 1


def test_EV5_racing_run_started_appends_exactly_one(pg_config: dict[str, Any]) -> None:
    world_setup = asyncio.run(_pending_run(pg_config))
    outcomes = asyncio.run(_race_in_process(pg_config, world_setup, [STARTED] * 6))
    assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
    assert sum(o.event is not None for o in outcomes) == 1
    assert asyncio.run(_events_of(pg_config, world_setup)).count(("run_started", None)) == 1


async def _pending_run(config: dict[str, Any]) -> str:
    world = PostgresWorld(config)
    try:
        result = await world.events.create(new_id("wrun"), RUN)
        assert result.run is not None
        return result.run.run_id
    finally:
        await world.close()


def test_EV8_racing_step_started_never_reopens_a_finished_step(pg_config: dict[str, Any]) -> None:
    for _ in range(5):
        (run_id,) = asyncio.run(_new_runs(pg_config, 1, steps=("s1",)))
        started = EventRequest(event_type="step_started", correlation_id="s1")
        completed = EventRequest(event_type="step_completed", correlation_id="s1", event_data={"result": b"r"})
        asyncio.run(_race_in_process(pg_config, run_id, [started, completed, started, started]))
        events = [e for e in asyncio.run(_events_of(pg_config, run_id)) if e[1] == "s1"]
        done_at = events.index(("step_completed", "s1"))
        assert events[done_at + 1 :] == [], events
