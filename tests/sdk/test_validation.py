"""Request validation: the shipped JSON Schema matches the §3 table, and a malformed
request is one ValidationError (400) naming the offending field, raised before any state is read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worlds_sdk import events as ev
from worlds_sdk.codec import dumps, to_wire, wire_text
from worlds_sdk.errors import ValidationError
from worlds_sdk.models import EventRequest, Hook, Run, Step, Wait
from worlds_sdk.rules import Snapshot, decide
from worlds_sdk.validation import compiled, load_schema, reference, validate_request

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
NAIVE = datetime(2025, 6, 1, 12, 0)
# Keys that look like the codec's tags, and more: user data may hold any of them.
DOLLARS = {"$x": 1, "$b": "aGk=", "$t": NOW.isoformat(), "$o": {"$b": [b"\x00"]}, "$": None, "$$": {}}
DOLLAR_KEYS = st.sampled_from(sorted(DOLLARS)) | st.text(max_size=5).map(lambda k: f"${k}")
USER_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.binary(max_size=5) | st.just(NOW),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(DOLLAR_KEYS | st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
RUN = {"deployment_id": "dpl_1", "workflow_name": "wf", "input": b"\x00"}
CORRELATED = ev.STEP_EVENT_TYPES | ev.HOOK_EVENT_TYPES | ev.WAIT_EVENT_TYPES
CLIENT_EVENT_TYPES = [t for t in ev.EVENT_TYPES if t not in ev.WORLD_ONLY_EVENT_TYPES]

# The data fields §3 marks as required (no "?"), per event type.
SPEC_REQUIRED_DATA = {
    "run_created": {"deployment_id", "workflow_name", "input"},
    "run_failed": {"error"},
    "step_created": {"step_name", "input"},
    "step_completed": {"result"},
    "step_failed": {"error"},
    "step_retrying": {"error"},
    "hook_created": {"token"},
    "hook_received": {"payload"},
    "wait_created": {"resume_at"},
}
MINIMAL_DATA: dict[str, dict[str, Any] | None] = {
    "run_created": RUN,
    "run_started": None,
    "run_completed": None,
    "run_failed": {"error": "boom"},
    "run_cancelled": None,
    "step_created": {"step_name": "add", "input": b""},
    "step_started": None,
    "step_completed": {"result": b""},
    "step_failed": {"error": {"message": "m"}},
    "step_retrying": {"error": "m"},
    "hook_created": {"token": "t"},
    "hook_received": {"payload": b""},
    "hook_disposed": None,
    "wait_created": {"resume_at": NOW},
    "wait_completed": None,
}


def req(event_type: Any, data: Any = None, *, correlation_id: Any = "c1", spec_version: Any = None) -> EventRequest:
    return EventRequest(
        event_type=event_type, correlation_id=correlation_id, event_data=data, spec_version=spec_version
    )


def _then_block(event_type: str) -> dict[str, Any]:
    for rule in load_schema("event-request")["allOf"]:
        if rule["if"]["properties"]["event_type"]["const"] == event_type:
            then: dict[str, Any] = rule["then"]
            return then
    return {}


def test_schema_is_a_valid_json_schema() -> None:
    schema = load_schema("event-request")
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_schema_accepts_exactly_the_client_event_types() -> None:
    """hook_conflict is written by the World only (HK-2), so no client may send it."""
    assert load_schema("event-request")["properties"]["event_type"]["enum"] == CLIENT_EVENT_TYPES


def _data_schema(then: dict[str, Any]) -> dict[str, Any]:
    """The schema of an event type's event_data, checked as sent or inside the codec's ``$o`` wrapper."""
    if not then:  # an event type without a data schema (run_cancelled)
        return {}
    event_data = then["properties"]["event_data"]
    assert event_data["if"] == {"$ref": "#/$defs/wrapped"}
    ref = event_data["else"]["$ref"]
    assert event_data["then"] == {"properties": {"$o": {"$ref": ref}}}
    schema: dict[str, Any] = load_schema("event-request")["$defs"][ref.rsplit("/", 1)[1]]
    return schema


@pytest.mark.parametrize("event_type", CLIENT_EVENT_TYPES)
def test_schema_requires_the_data_fields_of_the_spec_table(event_type: str) -> None:
    then = _then_block(event_type)
    data_schema = _data_schema(then)
    assert set(data_schema.get("required", ())) == SPEC_REQUIRED_DATA.get(event_type, set())
    required = set(then.get("required", ()))
    assert ("event_data" in required) is (event_type in SPEC_REQUIRED_DATA)
    assert ("correlation_id" in required) is (event_type in CORRELATED)


@pytest.mark.parametrize("event_type", CLIENT_EVENT_TYPES)
def test_minimal_well_formed_request_is_accepted(event_type: str) -> None:
    validate_request(req(event_type, MINIMAL_DATA[event_type]))


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(req("run_created", RUN | {"note": "x", "execution_context": {"$k": [b"\xff"]}}), id="extra keys"),
        pytest.param(req("run_started", RUN | {"execution_context": {}}), id="run_started bootstrap"),
        pytest.param(req("hook_received", {"payload": b"", "token": "t"}), id="hook_received with token"),
        pytest.param(req("step_retrying", {"error": "m", "stack": "s", "retry_after": NOW}), id="step_retrying full"),
        pytest.param(req("run_cancelled", {}, correlation_id=None, spec_version=1), id="spec_version 1"),
    ],
)
def test_well_formed_variants_are_accepted(request_: EventRequest) -> None:
    validate_request(request_)


@pytest.mark.parametrize("event_type", sorted(MINIMAL_DATA))
def test_the_returned_wire_form_stores_as_dumps_stores_the_request(event_type: str) -> None:
    """A World stores ``wire_text(validate_request(r)["event_data"])`` in place of ``dumps(r.event_data)``."""
    request_ = req(event_type, (MINIMAL_DATA[event_type] or {}) | {"$k": [b"\xff", NOW]})
    wire = validate_request(request_)
    assert wire_text(wire["event_data"]) == dumps(request_.event_data)
    assert wire["event_type"] == event_type


@pytest.mark.parametrize("event_type", CLIENT_EVENT_TYPES)
def test_user_keys_starting_with_dollar_are_accepted(event_type: str) -> None:
    """Issue 13: a "$" key made the codec wrap event_data, and the schema saw none of its fields."""
    data = {**(MINIMAL_DATA[event_type] or {}), **DOLLARS}
    validate_request(req(event_type, data))


@pytest.mark.parametrize("event_type", ["run_failed", "step_failed", "step_retrying"])
def test_error_object_with_dollar_keys_is_accepted(event_type: str) -> None:
    validate_request(req(event_type, {"error": {"message": "m", "code": "E", **DOLLARS}}))


@settings(max_examples=25, deadline=None)
@given(extra=st.dictionaries(DOLLAR_KEYS, USER_VALUES, min_size=1, max_size=4))
@pytest.mark.parametrize("event_type", CLIENT_EVENT_TYPES)
def test_any_dollar_keyed_user_data_is_accepted_and_kept_by_decide(event_type: str, extra: dict[str, Any]) -> None:
    data = {**(MINIMAL_DATA[event_type] or {}), **extra}
    request_ = req(event_type, data)
    validate_request(request_)
    if event_type not in (ev.RUN_CREATED, ev.RUN_STARTED):  # run_created keeps only the run's fields
        snapshot = Snapshot(run=_running_run(), step=_step(), hook=_hook(), wait=_wait())
        if event_type in (ev.STEP_CREATED, ev.HOOK_CREATED, ev.WAIT_CREATED):
            snapshot = Snapshot(run=_running_run())
        (event,) = decide("wrun_1", request_, snapshot, now=NOW, world_spec_version=3).events
        assert event.event_data == data


def bad(case_id: str, field: str, request_: Any) -> Any:
    return pytest.param(request_, field, id=f"{case_id} -> ValidationError({field})")


MALFORMED = [
    bad("not an EventRequest", "request", {"event_type": "run_created"}),
    bad("unknown event_type", "event_type", req("run_paused")),
    bad("hook_conflict sent by a client (HK-2)", "event_type", req("hook_conflict", {"token": "t"})),
    bad("event_type not a string", "event_type", req(7)),
    bad("spec_version 0", "spec_version", req("run_cancelled", spec_version=0)),
    bad("spec_version a string", "spec_version", req("run_cancelled", spec_version="3")),
    bad("correlation_id not a string", "correlation_id", req("run_cancelled", correlation_id=5)),
    bad("event_data a list", "event_data", req("run_cancelled", [1])),
    bad("event_data key not a string", "event_data", req("run_cancelled", {1: "x"})),
    bad("NaN in event_data", "event_data.x", req("run_cancelled", {"x": float("nan")})),
    bad("infinity nested in event_data", "event_data.x[1].y", req("run_cancelled", {"x": [1, {"y": float("inf")}]})),
    bad("unstorable type in event_data", "event_data.x", req("run_cancelled", {"x": {1, 2}})),
    bad("run_created without event_data", "event_data", req("run_created")),
    *[
        bad(
            f"run_created missing {key}",
            f"event_data.{key}",
            req("run_created", {k: v for k, v in RUN.items() if k != key}),
        )
        for key in RUN
    ],
    bad(
        "run_created deployment_id bytes where string expected",
        "event_data.deployment_id",
        req("run_created", RUN | {"deployment_id": b"d"}),
    ),
    bad(
        "run_created workflow_name wrong type",
        "event_data.workflow_name",
        req("run_created", RUN | {"workflow_name": 1}),
    ),
    bad("run_created input str where bytes expected", "event_data.input", req("run_created", RUN | {"input": "x"})),
    bad(
        "run_created input datetime where bytes expected", "event_data.input", req("run_created", RUN | {"input": NOW})
    ),
    bad(
        "run_created input a dict posing as a bytes tag",
        "event_data.input",
        req("run_created", RUN | {"input": {"$b": "AA=="}}),
    ),
    bad(
        "run_created execution_context not an object",
        "event_data.execution_context",
        req("run_created", RUN | {"execution_context": "x"}),
    ),
    bad(
        "run_created naive datetime in execution_context",
        "event_data.execution_context.at",
        req("run_created", RUN | {"execution_context": {"at": NAIVE}}),
    ),
    bad("run_started bootstrap input str", "event_data.input", req("run_started", RUN | {"input": "x"})),
    bad("run_completed output str", "event_data.output", req("run_completed", {"output": "x"})),
    bad("run_failed without event_data", "event_data", req("run_failed")),
    bad("run_failed without error", "event_data.error", req("run_failed", {})),
    bad(
        "run_failed error object without message",
        "event_data.error.message",
        req("run_failed", {"error": {"stack": "s"}}),
    ),
    bad("run_failed error of wrong type", "event_data.error", req("run_failed", {"error": 1})),
    bad(
        "run_failed error_code wrong type", "event_data.error_code", req("run_failed", {"error": "m", "error_code": 1})
    ),
    *[
        bad(f"{t} without correlation_id", "correlation_id", req(t, MINIMAL_DATA[t], correlation_id=None))
        for t in sorted(CORRELATED - ev.WORLD_ONLY_EVENT_TYPES)
    ],
    bad(
        "step_created empty correlation_id",
        "correlation_id",
        req("step_created", MINIMAL_DATA["step_created"], correlation_id=""),
    ),
    bad("step_created without step_name", "event_data.step_name", req("step_created", {"input": b""})),
    bad("step_created without input", "event_data.input", req("step_created", {"step_name": "s"})),
    bad("step_started attempt negative", "event_data.attempt", req("step_started", {"attempt": -1})),
    bad("step_started attempt a string", "event_data.attempt", req("step_started", {"attempt": "1"})),
    bad("step_completed without event_data", "event_data", req("step_completed")),
    bad("step_completed without result", "event_data.result", req("step_completed", {})),
    bad("step_completed result str", "event_data.result", req("step_completed", {"result": "x"})),
    bad("step_failed without error", "event_data.error", req("step_failed", {"stack": "s"})),
    bad("step_failed stack wrong type", "event_data.stack", req("step_failed", {"error": "m", "stack": 1})),
    bad(
        "step_retrying retry_after a string",
        "event_data.retry_after",
        req("step_retrying", {"error": "m", "retry_after": "soon"}),
    ),
    bad(
        "step_retrying naive retry_after",
        "event_data.retry_after",
        req("step_retrying", {"error": "m", "retry_after": NAIVE}),
    ),
    bad("hook_created without token", "event_data.token", req("hook_created", {"metadata": b""})),
    bad("hook_created empty token", "event_data.token", req("hook_created", {"token": ""})),
    bad("hook_created token bytes", "event_data.token", req("hook_created", {"token": b"t"})),
    bad(
        "hook_created is_webhook a string",
        "event_data.is_webhook",
        req("hook_created", {"token": "t", "is_webhook": "yes"}),
    ),
    bad("hook_created metadata str", "event_data.metadata", req("hook_created", {"token": "t", "metadata": "m"})),
    bad("hook_received without payload", "event_data.payload", req("hook_received", {})),
    bad("wait_created without event_data", "event_data", req("wait_created")),
    bad("wait_created naive resume_at", "event_data.resume_at", req("wait_created", {"resume_at": NAIVE})),
    bad("wait_created resume_at bytes", "event_data.resume_at", req("wait_created", {"resume_at": b"x"})),
    # user data with "$" keys is wrapped by the codec ({"$o": ...}); the schema checks inside the wrapper
    bad("step_created with a $ key, without step_name", "event_data.step_name", req("step_created", DOLLARS)),
    bad(
        "step_started with a $ key, attempt a string",
        "event_data.attempt",
        req("step_started", {"attempt": "1", **DOLLARS}),
    ),
    bad(
        "run_failed error object with a $ key, without message",
        "event_data.error.message",
        req("run_failed", {"error": {"stack": "s", **DOLLARS}}),
    ),
    bad(
        "step_created input a user dict that looks like bytes",
        "event_data.input",
        req("step_created", {"step_name": "s", "input": {"$b": "aGk="}}),
    ),
    bad(
        "wait_created resume_at a user dict that looks like a datetime",
        "event_data.resume_at",
        req("wait_created", {"resume_at": {"$t": NOW.isoformat()}}),
    ),
]


@pytest.mark.parametrize(("request_", "field"), MALFORMED)
def test_malformed_request_names_the_field(request_: EventRequest, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_request(request_)
    assert info.value.field == field
    assert info.value.status == 400
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize(("request_", "field"), MALFORMED)
def test_decide_rejects_malformed_requests_before_reading_state(request_: EventRequest, field: str) -> None:
    """A malformed request is a 400 even when the run is missing: validation comes first."""
    with pytest.raises(ValidationError) as info:
        decide("wrun_1", request_, Snapshot(run=None), now=NOW, world_spec_version=3)
    assert info.value.field == field


DATA_FIELDS = sorted({f for fields in SPEC_REQUIRED_DATA.values() for f in fields} | {"output", "attempt", "stack"})
DATA_VALUES = USER_VALUES | st.integers(min_value=-2, max_value=2) | st.sampled_from(["", "x", NOW.isoformat(), "no"])


@st.composite
def wire_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Requests near the schema's edges, in wire form: known and unknown types, fields, values."""
    wire: dict[str, Any] = {"event_type": draw(st.sampled_from([*ev.EVENT_TYPES, "nope"]) | st.integers())}
    if draw(st.booleans()):
        wire["correlation_id"] = draw(st.text(max_size=3) | st.none() | st.integers())
    if draw(st.booleans()):
        fields = st.sampled_from(DATA_FIELDS) | DOLLAR_KEYS
        data = draw(st.dictionaries(fields, DATA_VALUES, max_size=4))
        wire["event_data"] = to_wire(data) if draw(st.booleans()) else data
    if draw(st.booleans()):
        wire["spec_version"] = draw(st.integers(min_value=-1, max_value=4) | st.text(max_size=2))
    if draw(st.booleans()):
        wire[draw(st.sampled_from(["extra", "$o"]))] = 1
    return wire


@settings(max_examples=400, deadline=None)
@given(wire=wire_requests())
def test_compiled_validator_never_accepts_what_the_reference_rejects(wire: dict[str, Any]) -> None:
    """The fast path only answers "valid"; a "no" is handed to the reference, whose verdict stands.

    The converse may differ: the compiled validator asserts ``format: date-time``,
    the reference only where ``rfc3339-validator`` is installed.
    """
    if compiled("event-request").is_valid(wire):
        assert reference("event-request").is_valid(wire)


@pytest.mark.parametrize(("request_", "field"), [p for p in MALFORMED if isinstance(p.values[0], EventRequest)])
def test_compiled_validator_rejects_every_malformed_request(request_: EventRequest, field: str) -> None:
    wire: dict[str, Any] = {"event_type": request_.event_type}
    if request_.correlation_id is not None:
        wire["correlation_id"] = request_.correlation_id
    if request_.event_data is not None:
        try:
            wire["event_data"] = to_wire(request_.event_data)
        except ValidationError:
            return  # rejected by the codec before any schema is asked
    if request_.spec_version is not None:
        wire["spec_version"] = request_.spec_version
    assert not compiled("event-request").is_valid(wire)


def _running_run() -> Run:
    return Run(
        run_id="wrun_1",
        status="running",
        deployment_id="d",
        workflow_name="wf",
        spec_version=3,
        input=b"",
        created_at=NOW,
        updated_at=NOW,
    )


def _step() -> Step:
    return Step(
        run_id="wrun_1",
        step_id="c1",
        step_name="s",
        status="running",
        input=b"",
        attempt=1,
        spec_version=3,
        created_at=NOW,
        updated_at=NOW,
    )


def _hook() -> Hook:
    return Hook(hook_id="c1", run_id="wrun_1", token="t", spec_version=3, created_at=NOW)


def _wait() -> Wait:
    return Wait(run_id="wrun_1", wait_id="c1", status="waiting", resume_at=NOW, created_at=NOW, updated_at=NOW)
