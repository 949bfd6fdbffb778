"""The NUL escape is reversible for every string, and the identity for ordinary ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_worlds.postgres.nul_escape import escape_json, escape_params, escape_text, unescape_text, unescape_value

pytestmark = pytest.mark.postgres

texts = st.text(st.sampled_from('\x00\x01\x02\\u0a"') | st.characters(blacklist_categories=["Cs"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)


@given(texts)
def test_text_escape_round_trips_and_removes_nul(value: str) -> None:
    escaped = escape_text(value)
    assert "\x00" not in escaped and unescape_text(escaped) == value


@given(st.text(st.characters(blacklist_characters="\x00\x01", blacklist_categories=["Cs"])))
def test_ordinary_text_is_unchanged(value: str) -> None:
    assert escape_text(value) == value == unescape_text(value)


@given(json_values)
def test_json_escape_round_trips_and_postgres_never_sees_u0000(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    escaped = escape_json(text)
    assert "\\u0000" not in escaped.replace("\\\\", "")
    assert unescape_value(json.loads(escaped)) == value


def test_json_and_text_escapes_agree() -> None:
    """A string extracted from escaped JSON by SQL equals the text escape of the original."""
    value = "a\x00b\x01c"
    assert json.loads(escape_json(json.dumps(value))) == escape_text(value)
    assert escape_params({"k": [value], "n": 1}) == {"k": [escape_text(value)], "n": 1}
