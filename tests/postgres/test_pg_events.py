"""create_event_v1 (PL/pgSQL) against worlds_sdk.rules, the oracle it reimplements.

Random request sequences go to the Postgres World and to an in-memory model that
applies ``rules.decide``; every outcome must match: the same error type, or the
same appended event and the same resulting entity. The model is given the
World's own timestamp as ``now``, so times compare exactly too.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.oracle import Oracle
from reference_worlds.postgres import PostgresWorld
from worlds_sdk import SPEC_VERSION
from worlds_sdk.errors import WorkflowWorldError
from worlds_sdk.ids import new_id, parse_ulid_time
from worlds_sdk.models import EventRequest, EventResult, Pagination

pytestmark = pytest.mark.postgres

LATER = datetime.now(UTC) + timedelta(hours=1)
EARLIER = datetime.now(UTC) - timedelta(hours=1)


def _without_ids(result: EventResult) -> EventResult:
    event = result.event and dataclasses.replace(result.event, event_id="")
    return dataclasses.replace(result, event=event)


def requests(run_ids: list[str], tag: str) -> st.SearchStrategy[tuple[str, EventRequest]]:
    """(run id, request) pairs over a few runs, steps, hooks, tokens and waits, so they collide often."""
    cid = st.sampled_from(["a", "b"]).map(lambda c: f"{tag}-{c}")
    error = st.one_of(st.just("boom"), st.fixed_dictionaries({"message": st.just("m\x00"), "code": st.just("E")}))
    data: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "run_created": st.just({"deployment_id": "d", "workflow_name": "wf", "input": b"\x00in"}),
        "run_started": st.one_of(st.just({}), st.just({"deployment_id": "d", "workflow_name": "wf", "input": b"b"})),
        "run_completed": st.just({"output": b"\x00out"}),
        "run_failed": st.builds(lambda e: {"error": e, "error_code": "RF"}, error),
        "run_cancelled": st.just({}),
        "step_created": st.just({"step_name": "s\x00", "input": b"i"}),
        "step_started": st.just({}),
        "step_completed": st.just({"result": b"r"}),
        "step_failed": st.builds(lambda e: {"error": e, "stack": "trace"}, error),
        "step_retrying": st.builds(lambda t: {"error": "x", "retry_after": t}, st.sampled_from([LATER, EARLIER])),
        "hook_created": st.builds(
            lambda t: {"token": f"{tag}-tok{t}", "metadata": b"m", "is_webhook": False}, st.sampled_from([0, 1])
        ),
        "hook_received": st.just({"payload": b"p"}),
        "hook_disposed": st.just({}),
        "wait_created": st.just({"resume_at": LATER}),
        "wait_completed": st.just({}),
    }
    return st.tuples(
        st.sampled_from(run_ids),
        st.sampled_from(sorted(data)).flatmap(
            lambda t: st.builds(
                lambda d, c: EventRequest(
                    event_type=t, event_data=d, correlation_id=None if t.startswith("run") else c
                ),
                data[t],
                cid,
            )
        ),
    )


async def _check_against_rules(world: PostgresWorld, steps: list[tuple[str, EventRequest]]) -> None:
    oracle = Oracle(SPEC_VERSION)
    for run_id, request in steps:
        try:
            got: EventResult | WorkflowWorldError = await world.events.create(run_id, request)
        except WorkflowWorldError as exc:
            got = exc
        now = got.event.created_at if isinstance(got, EventResult) and got.event else datetime.now(UTC)
        try:
            effects = oracle.apply(run_id, request, now)
        except WorkflowWorldError as exc:
            assert type(got) is type(exc), (request, got, exc)
            continue
        assert isinstance(got, EventResult), (request, got, effects.result)
        assert _without_ids(got) == _without_ids(effects.result), request


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_create_event_v1_agrees_with_rules_decide(pg_config: dict[str, Any], data: st.DataObject) -> None:
    tag = new_id("hook")
    run_ids = [new_id("wrun") for _ in range(2)]
    created = [(run_id, RUN) for run_id in run_ids]
    steps = created + data.draw(st.lists(requests(run_ids, tag), min_size=20, max_size=50))

    async def body() -> None:
        world = PostgresWorld(pg_config)
        try:
            await _check_against_rules(world, steps)
        finally:
            await world.close()

    asyncio.run(body())


@pytest.fixture
def world(pg_config: dict[str, Any]) -> Iterator[PostgresWorld]:
    yield PostgresWorld(pg_config)


def _run(world: PostgresWorld, body: Any) -> Any:
    async def main() -> Any:
        try:
            return await body()
        finally:
            await world.close()

    return asyncio.run(main())


RUN = EventRequest(event_type="run_created", event_data={"deployment_id": "d", "workflow_name": "wf", "input": b""})


def test_event_ids_are_ulids_in_append_order_even_when_a_clock_went_back(
    world: PostgresWorld, pg_config: dict[str, Any]
) -> None:
    async def body() -> None:
        run = (await world.events.create(None, RUN)).run
        assert run is not None
        # a writer whose clock ran an hour ahead appended the last event
        with psycopg.connect(pg_config["url"], autocommit=True) as conn:
            conn.execute(
                f"UPDATE {pg_config['schema']}.events SET created_at = created_at + interval '1 hour' "
                "WHERE run_id = %s",
                (run.run_id,),
            )
        for _ in range(5):
            await world.events.create(run.run_id, EventRequest(event_type="run_started"))
            await world.events.create(
                run.run_id,
                EventRequest(event_type="wait_created", correlation_id=new_id("wait"), event_data={"resume_at": LATER}),
            )
        events = (await world.events.list(run.run_id, pagination=Pagination(limit=100))).data
        times = [e.created_at for e in events]
        ids = [e.event_id for e in events]
        assert times == sorted(times) and times[-1] >= times[0] >= run.created_at + timedelta(hours=1)
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        for event in events[1:]:  # the first one's time was moved, not its id
            assert event.event_id.startswith("evnt_")
            assert abs(parse_ulid_time(event.event_id) - event.created_at) < timedelta(milliseconds=1)

    _run(world, body)


def test_nul_and_escape_characters_survive_in_ids_names_tokens_and_data(world: PostgresWorld) -> None:
    odd = "a\x00b\x01c\x01\x02d\\u0000"

    async def body() -> None:
        run = (await world.events.create(None, RUN)).run
        assert run is not None
        await world.events.create(
            run.run_id,
            EventRequest(
                event_type="step_created",
                correlation_id=odd,
                event_data={"step_name": odd, "input": odd.encode(), odd: [odd]},
            ),
        )
        await world.events.create(
            run.run_id, EventRequest(event_type="hook_created", correlation_id=odd, event_data={"token": odd})
        )
        step = await world.steps.get(run.run_id, odd)
        assert (step.step_id, step.step_name, step.input) == (odd, odd, odd.encode())
        assert (await world.hooks.get_by_token(odd)).hook_id == odd
        (event,) = (await world.events.list_by_correlation_id(odd, run_id=run.run_id)).data[:1]
        assert event.event_data == {"step_name": odd, "input": odd.encode(), odd: [odd]}
        await world.write_to_stream(odd, odd, b"\x00")
        assert await world.list_streams_by_run_id(odd) == [odd]

    _run(world, body)


def test_resolve_none_strips_the_create_result(world: PostgresWorld) -> None:
    async def body() -> None:
        result = await world.events.create(None, RUN, resolve_data="none")
        assert result.run is not None and result.run.input is None
        assert result.event is not None and "input" not in (result.event.event_data or {})
        assert result.event.event_data == {"deployment_id": "d", "workflow_name": "wf"}

    _run(world, body)
