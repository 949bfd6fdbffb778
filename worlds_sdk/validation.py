"""Validation of ``events.create`` input against the shipped JSON Schema.

The schema (``schemas/event-request.schema.json``) is the language-neutral
statement of what a well-formed request is; validating against it, rather than
with hand-written checks, keeps the Python SDK and the published wire shape from
drifting apart. A malformed request gets one :class:`ValidationError` naming the
offending field.

Two validators read the one schema. ``jsonschema_rs`` (compiled once, in Rust)
answers the question every request asks, "is it valid?", in microseconds; the
pure-Python ``jsonschema`` walk, which cost about half of an ``events.create``
(docs/performance.md), runs only for a request the fast one rejects, to build
the message and find the field. The Python validator is the reference: where
the two disagree it decides, so the fast path can only make a valid request
cheaper, never change a verdict (``tests/sdk/test_validation.py`` pins the two
to each other).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import jsonschema_rs

from .codec import to_wire
from .errors import ValidationError
from .models import EventRequest


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A schema shipped in ``worlds_sdk/schemas`` by file stem, e.g. ``"event-request"``."""
    text = resources.files("worlds_sdk").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def compiled(name: str) -> jsonschema_rs.Validator:
    """The fast validator of a shipped schema, formats asserted as the reference's format checker does."""
    return jsonschema_rs.validator_for(load_schema(name), validate_formats=True)


@cache
def reference(name: str) -> jsonschema.protocols.Validator:
    """The reference validator: its verdict wins, and its errors make the message."""
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate_request(request: EventRequest) -> dict[str, Any]:
    """Raise :class:`ValidationError` unless ``request`` matches the event-request schema.

    Returns the request's wire form that was validated (``event_data`` through
    :func:`~worlds_sdk.codec.to_wire`), for a World that stores it as JSON:
    :func:`~worlds_sdk.codec.wire_text` of its ``event_data`` is ``codec.dumps`` of the
    request's, without converting the data a second time.
    """
    if not isinstance(request, EventRequest):
        raise ValidationError(f"expected an EventRequest, got {type(request).__name__}", field="request")
    wire: dict[str, Any] = {"event_type": request.event_type}
    if request.correlation_id is not None:
        wire["correlation_id"] = request.correlation_id
    if request.event_data is not None:
        wire["event_data"] = to_wire(request.event_data, "event_data")
    if request.spec_version is not None:
        wire["spec_version"] = request.spec_version
    if compiled("event-request").is_valid(wire):
        return wire
    error = jsonschema.exceptions.best_match(reference("event-request").iter_errors(wire))
    if error is not None:
        raise ValidationError(error.message, field=_field(error))
    return wire


def _field(error: jsonschema.exceptions.ValidationError) -> str:
    """The dotted path of the offending field; for a missing one, the missing field itself.

    jsonschema reports a ``required`` failure at the enclosing object, which would
    name ``request`` or ``event_data`` rather than the field the caller left out.
    A missing codec tag (``$b``, ``$t``) is the value's wrong type, so it names the value.
    The codec's ``$o`` wrapper of a dict with ``$`` keys is not a field of the caller's.
    """
    path = [str(p) for p in error.absolute_path if p != "$o"]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing and not missing[0].startswith("$"):
            path.append(missing[0])
    return ".".join(path) or "request"
