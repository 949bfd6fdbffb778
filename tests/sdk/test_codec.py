"""The storage/wire codec: JSON-like values with bytes and datetimes round-trip exactly.

"Exactly" is stricter than ``==``: ``True == 1`` and ``0.0 == -0.0`` in Python, and two
datetimes at the same instant compare equal across offsets, so :func:`assert_same`
also compares types, float signs and UTC offsets.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worlds_sdk.codec import dumps, from_wire, loads, to_wire
from worlds_sdk.errors import ValidationError

# Whole-second offsets: CPython 3.11's fromisoformat drops an offset of under one second
# ("+00:00:00.000001" reads back as UTC); no real zone has one.
offsets = st.integers(min_value=-86399, max_value=86399).map(lambda s: timezone(timedelta(seconds=s)))
aware_datetimes = st.datetimes(timezones=st.just(UTC) | offsets)
payloads = st.binary() | st.sampled_from([b"", b"\x00", b"\xff", b"\x00\xff\x00", b"\xff\xfe\x00\x00"])
keys = st.text() | st.sampled_from(["$b", "$t", "$o", "$", "$$", "b", ""])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | payloads
    | aware_datetimes
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5), max_leaves=25
)


def assert_same(decoded: Any, original: Any) -> None:
    assert type(decoded) is type(original), (decoded, original)
    if isinstance(original, dict):
        assert list(decoded) == list(original)
        for key in original:
            assert_same(decoded[key], original[key])
    elif isinstance(original, list):
        assert len(decoded) == len(original)
        for d, o in zip(decoded, original, strict=True):
            assert_same(d, o)
    elif isinstance(original, float):
        assert decoded == original and math.copysign(1, decoded) == math.copysign(1, original)
    elif isinstance(original, datetime):
        assert decoded == original and decoded.utcoffset() == original.utcoffset()
    else:
        assert decoded == original


@given(values)
def test_round_trip_is_exact(value: Any) -> None:
    assert_same(loads(dumps(value)), value)


def assert_plain_json(wire: Any) -> None:
    if isinstance(wire, dict):
        for key, item in wire.items():
            assert isinstance(key, str)
            assert_plain_json(item)
    elif isinstance(wire, list):
        for item in wire:
            assert_plain_json(item)
    else:
        assert wire is None or type(wire) in (bool, int, float, str), wire


@given(values)
def test_wire_form_is_plain_json(value: Any) -> None:
    wire = to_wire(value)
    assert_plain_json(wire)
    assert_same(from_wire(wire), value)
    assert_same(loads(dumps(value).encode("utf-8")), value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(b"\x00\xff", '{"$b":"AP8="}', id="bytes are base64 under $b"),
        pytest.param(b"", '{"$b":""}', id="empty bytes"),
        pytest.param(
            datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC), '{"$t":"2025-01-02T03:04:05.000006+00:00"}', id="$t"
        ),
        pytest.param({"$b": "AA=="}, '{"$o":{"$b":"AA=="}}', id="user dict with $-keys is wrapped in $o"),
        pytest.param({"a": {"$t": 1}}, '{"a":{"$o":{"$t":1}}}', id="wrapping applies at every depth"),
        pytest.param({"a": 1, "$": 2}, '{"$o":{"a":1,"$":2}}', id="one $-key wraps the whole dict"),
        pytest.param({"k": "é\x00"}, '{"k":"é\\u0000"}', id="compact, non-ASCII kept"),
        pytest.param((1, 2), "[1,2]", id="tuples become lists"),
    ],
)
def test_wire_text_is_pinned(value: Any, text: str) -> None:
    """Another-language World reads and writes this text, so its shape is part of the contract."""
    assert dumps(value) == text


def test_a_user_dict_that_looks_like_a_tag_stays_a_dict() -> None:
    for tagged in ({"$b": "AA=="}, {"$t": "2025-01-01T00:00:00+00:00"}, {"$o": {"x": 1}}):
        assert_same(loads(dumps(tagged)), tagged)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        pytest.param(float("nan"), "$", id="NaN"),
        pytest.param(float("inf"), "$", id="infinity"),
        pytest.param({"a": [0, float("-inf")]}, "$.a[1]", id="nested -infinity"),
        pytest.param(datetime(2025, 1, 1), "$", id="naive datetime"),
        pytest.param({"when": [datetime(2025, 1, 1)]}, "$.when[0]", id="nested naive datetime"),
        pytest.param({1: "x"}, "$", id="non-string key"),
        pytest.param({"s": {1}}, "$.s", id="set"),
        pytest.param(object(), "$", id="arbitrary object"),
    ],
)
def test_unstorable_values_are_rejected_naming_the_path(value: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        dumps(value)
    assert info.value.field == field


def _nested(depth: int) -> Any:
    value: Any = b"x"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_deeply_nested_data_is_stored_as_deep_as_before() -> None:
    """One frame per level: a conversion that took two frames per level failed at about half this depth."""
    assert dumps(_nested(900)).count('"a"') == 900


def test_data_nested_beyond_the_interpreter_limit_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="nested too deeply"):
        to_wire(_nested(5000))
