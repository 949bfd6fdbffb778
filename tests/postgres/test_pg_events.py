"""create_event_v1 (PL/pgSQL) against worlds_sdk.rules, the oracle it reimplements.

Random request sequences go to the Postgres World and to an in-memory model that
applies ``rules.decide``; every outcome must match: the same error type, or the
same appended event and the same resulting entity. The model is given the
World's own timestamp as ``now``, so times compare exactly too. The requests are
drawn from the suite's own strategies (payload bytes, user data with ``$`` keys,
execution contexts), carry spec versions on both sides of the World's, and share
correlation ids across runs (EV-12); after each sequence every stored entity is
read back and compared with the model, not only the results.

The race branches of ``create_event_v1`` (a racing ``run_created``, a resilient
start losing to one, two runs claiming one token or one hook id) are reached
deterministically: a first transaction is held open on its own connection until
the World's call is seen waiting on its lock, then committed.
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
from psycopg.rows import dict_row

from conformance.oracle import Oracle, comparable
from conformance.strategies import execution_contexts, names, payloads, user_data
from reference_worlds.postgres import PostgresWorld
from reference_worlds.postgres.nul_escape import escape_json
from reference_worlds.postgres.rows import entity_of
from reference_worlds.postgres.storage import create_event_query
from worlds_sdk import SPEC_VERSION
from worlds_sdk.codec import dumps
from worlds_sdk.errors import HookNotFoundError, WorkflowWorldError
from worlds_sdk.ids import new_id, parse_ulid_time
from worlds_sdk.models import Event, EventRequest, EventResult, Pagination, Wait

from .conftest import WorldConnections

pytestmark = pytest.mark.postgres

LATER = datetime.now(UTC) + timedelta(hours=1)
EARLIER = datetime.now(UTC) - timedelta(hours=1)
RUN = EventRequest(event_type="run_created", event_data={"deployment_id": "d", "workflow_name": "wf", "input": b""})
STARTED = EventRequest(event_type="run_started")
SPEC_VERSIONS = st.sampled_from([None, None, None, 1, SPEC_VERSION, SPEC_VERSION + 1])
"""Mostly none; an older spec; the World's; one above it (EV-10)."""


def _without_ids(result: EventResult) -> EventResult:
    event = result.event and dataclasses.replace(result.event, event_id="")
    return dataclasses.replace(result, event=event)


def _run_data(context: dict[str, Any] | None, payload: bytes) -> dict[str, Any]:
    data: dict[str, Any] = {"deployment_id": "d", "workflow_name": "wf", "input": payload}
    return data if context is None else {**data, "execution_context": context}


def requests(run_ids: list[str], tag: str) -> st.SearchStrategy[tuple[str, EventRequest]]:
    """(run id, request) pairs over a few runs, steps, hooks, tokens and waits, so they collide often.

    Correlation ids are shared by all runs, so run A often names run B's step, hook or wait (EV-12).
    """
    cid = st.sampled_from(["a", "b"]).map(lambda c: f"{tag}-{c}")
    small = st.dictionaries(st.sampled_from(["$b", "$o", "$t", "$x"]), st.none() | payloads | names, max_size=2)
    extra = st.one_of(st.just({}), small, user_data)
    contexts = st.none() | execution_contexts
    error = st.one_of(
        names,
        st.fixed_dictionaries({"message": st.just("m\x00"), "code": st.just("E")}),
        st.builds(lambda m, e: {"message": m, **e}, names, user_data),
    )
    data: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "run_created": st.builds(_run_data, contexts, payloads),
        "run_started": st.one_of(st.just({}), st.builds(_run_data, contexts, payloads)),
        "run_completed": st.builds(lambda o: {"output": o}, payloads),
        "run_failed": st.builds(lambda e: {"error": e, "error_code": "RF"}, error),
        "run_cancelled": st.just({}),
        "step_created": st.builds(lambda n, i: {"step_name": n, "input": i}, names, payloads),
        "step_started": st.one_of(st.just({}), st.just({"attempt": 9})),
        "step_completed": st.builds(lambda r: {"result": r}, payloads),
        "step_failed": st.builds(lambda e: {"error": e, "stack": "trace"}, error),
        "step_retrying": st.builds(
            lambda e, t: {"error": e, "retry_after": t}, error, st.sampled_from([LATER, EARLIER])
        ),
        "hook_created": st.builds(
            lambda t, m, w: {"token": f"{tag}-tok{t}", "metadata": m, "is_webhook": w},
            st.sampled_from([0, 1]),
            payloads,
            st.booleans(),
        ),
        "hook_received": st.builds(lambda p: {"payload": p}, payloads),
        "hook_disposed": st.just({}),
        "wait_created": st.just({"resume_at": LATER}),
        "wait_completed": st.just({}),
    }

    def request(event_type: str) -> st.SearchStrategy[EventRequest]:
        return st.builds(
            lambda d, e, c, v: EventRequest(
                event_type=event_type,
                event_data={**e, **d},
                correlation_id=None if event_type.startswith("run") else c,
                spec_version=v,
            ),
            data[event_type],
            extra,
            cid,
            SPEC_VERSIONS,
        )

    return st.tuples(st.sampled_from(run_ids), st.sampled_from(sorted(data)).flatmap(request))


async def _check_against_rules(world: PostgresWorld, oracle: Oracle, steps: list[tuple[str, EventRequest]]) -> None:
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


def _event_fields(event: Event) -> Event:
    return dataclasses.replace(event, event_id="")


def _stored_waits(config: dict[str, Any]) -> dict[tuple[str, str], Wait]:
    """Waits have no read API (they are read through events): read the table."""
    with psycopg.connect(config["url"], row_factory=dict_row) as conn:
        rows = conn.execute(
            f"SELECT run_id, wait_id, status, resume_at, completed_at, created_at, updated_at "
            f"FROM {config['schema']}.waits"
        ).fetchall()
    return {(r["run_id"], r["wait_id"]): Wait(**r) for r in rows}


async def _check_stored_state(
    world: PostgresWorld, oracle: Oracle, config: dict[str, Any], run_ids: list[str], *, exact: bool = True
) -> None:
    """Every entity and event of ``run_ids`` the World stores, read back, equals the model's.

    Clock fields compare exactly if ``exact``. Hypothesis runs its examples in one schema, so
    only the example's own runs (and their hooks and waits) are compared.
    """
    same = (lambda e: e) if exact else comparable
    whole = Pagination(limit=1000)
    runs = [r for r in (await world.runs.list(pagination=whole)).data if r.run_id in run_ids]
    assert {r.run_id: same(r) for r in runs} == {k: same(r) for k, r in oracle.runs.items()}
    for run_id in oracle.runs:
        events = (await world.events.list(run_id, pagination=whole)).data
        want = oracle.events[run_id]
        assert [same(_event_fields(e)) for e in events] == [same(_event_fields(e)) for e in want], run_id
        steps = (await world.steps.list(run_id, pagination=whole)).data
        assert {s.step_id: same(s) for s in steps} == {
            k[1]: same(s) for k, s in oracle.steps.items() if k[0] == run_id
        }, run_id
    hooks = [h for h in (await world.hooks.list(pagination=whole)).data if h.run_id in run_ids]
    assert {h.hook_id: same(h) for h in hooks} == {k: same(h) for k, h in oracle.hooks.items()}
    for hook_id in oracle.disposed:
        with pytest.raises(HookNotFoundError):
            await world.hooks.get(hook_id)
    waits = {k: w for k, w in _stored_waits(config).items() if k[0] in run_ids}
    assert {k: same(w) for k, w in waits.items()} == {k: same(w) for k, w in oracle.waits.items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_create_event_v1_agrees_with_rules_decide(pg_config: dict[str, Any], data: st.DataObject) -> None:
    tag = new_id("hook")
    run_ids = [new_id("wrun") for _ in range(3)]  # the third is created (or bootstrapped) by the sequence, if at all
    created = [(run_id, RUN) for run_id in run_ids[:2]]
    steps = created + data.draw(st.lists(requests(run_ids, tag), min_size=20, max_size=60))

    async def body() -> None:
        world = PostgresWorld(pg_config)
        oracle = Oracle(SPEC_VERSION)
        try:
            await _check_against_rules(world, oracle, steps)
            await _check_stored_state(world, oracle, pg_config, run_ids)
        finally:
            await world.close()

    asyncio.run(body())


# -- the race branches of create_event_v1 -------------------------------------------------


def _call(conn: psycopg.Connection[Any], run_id: str, request: EventRequest) -> None:
    """create_event_v1 on ``conn``, inside its open transaction, with the World's own parameters."""
    conn.execute(
        create_event_query(entity_of(request.event_type)).encode(),
        {
            "run_id": run_id,
            "event_type": request.event_type,
            "correlation_id": request.correlation_id,
            "data": None if request.event_data is None else escape_json(dumps(request.event_data)),
            "spec_version": request.spec_version,
            "world_spec_version": SPEC_VERSION,
        },
    )


def _hook(hook_id: str, token: str) -> EventRequest:
    return EventRequest(event_type="hook_created", correlation_id=hook_id, event_data={"token": token})


BOOTSTRAP = EventRequest(event_type="run_started", event_data=_run_data({"$o": [1]}, b"\x00boot"))
RACES = {
    # run_created loses to a racing run_created: its insert finds the run committed meanwhile (EV-4)
    "run_created vs run_created": (("new", RUN), ("new", RUN)),
    # a resilient start loses to a racing run_created: it starts the run the other created (EV-6)
    "run_created vs resilient run_started": (("new", RUN), ("new", BOOTSTRAP)),
    # two runs claim one token: the loser's insert waits, then finds the holder (HK-1, HK-2)
    "hook_created vs hook_created, one token": (("a", _hook("h-a", "tok")), ("b", _hook("h-b", "tok"))),
    # two runs create one hook id: hook ids are global, the loser gets a 409 (HK-2, EV-12)
    "hook_created vs hook_created, one hook id": (("a", _hook("h", "tok-a")), ("b", _hook("h", "tok-b"))),
}
"""(run, request) first, held open; then (run, request) from the World. Runs "a" and "b" are started, "new" is not."""


@pytest.mark.parametrize("race", RACES)
def test_create_event_v1_race_branches_agree_with_rules_decide(
    pg_config: dict[str, Any], connections: WorldConnections, eventually: Any, race: str
) -> None:
    runs = {name: new_id("wrun") for name in ("a", "b", "new")}
    ready = [runs["a"], runs["b"]]
    (first_on, first_request), (second_on, second_request) = RACES[race]
    first_run, second_run = runs[first_on], runs[second_on]

    async def body() -> None:
        world = PostgresWorld(pg_config)
        oracle = Oracle(SPEC_VERSION)
        try:
            for run_id in ready:
                for request in (RUN, STARTED):
                    await world.events.create(run_id, request)
                    oracle.apply(run_id, request, datetime.now(UTC))
            with psycopg.connect(pg_config["url"], options=f"-c search_path={pg_config['schema']}") as conn:
                _call(conn, first_run, first_request)  # holds its locks until commit
                racing = asyncio.ensure_future(world.events.create(second_run, second_request))

                async def waiting() -> bool:
                    blocked = (
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'"
                    )
                    return connections.count(blocked) == 1

                await eventually(waiting, what="the World's call to wait on the open transaction's lock")
                conn.commit()
            try:
                got: EventResult | WorkflowWorldError = await racing
            except WorkflowWorldError as exc:
                got = exc
            oracle.apply(first_run, first_request, datetime.now(UTC))
            try:
                want = oracle.apply(second_run, second_request, datetime.now(UTC)).result
            except WorkflowWorldError as exc:
                assert type(got) is type(exc), (got, exc)
            else:
                assert isinstance(got, EventResult), (got, want)
                assert got.event is not None and want.event is not None
                assert comparable(_event_fields(got.event)) == comparable(_event_fields(want.event))
                for name in ("run", "step", "hook", "wait"):
                    assert comparable(getattr(got, name)) == comparable(getattr(want, name)), name
            await _check_stored_state(world, oracle, pg_config, list(runs.values()), exact=False)
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
