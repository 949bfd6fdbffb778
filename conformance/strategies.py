"""Hypothesis strategies for the data a runtime sends, shared by the suite and the project's tests.

Payloads are opaque bytes with the edge cases that break naive storage (NUL,
invalid UTF-8, empty); names are arbitrary Unicode; user data may use any key,
including ones that look like the codec's tags (``$b``, ``$t``, ``$o``), which a
World must keep as data (PL-1).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

EDGE_PAYLOADS = [b"", b"\x00", b"\xff\xfe\x00\x01", b"\x00" * 1000, "\u2603".encode(), b"\xc3\x28"]
payloads = st.one_of(st.sampled_from(EDGE_PAYLOADS), st.binary(max_size=2048))
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
dollar_keys = st.sampled_from(["$b", "$t", "$o", "$", "$$", "$x"]) | names.map(lambda k: f"${k}")
user_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | names | payloads,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(dollar_keys | names, inner, max_size=3),
    max_leaves=10,
)
user_data = st.dictionaries(dollar_keys, user_values, max_size=4)
"""Extra keys for event_data: all start with "$", so none collides with a field of the §3 table."""
execution_contexts = st.dictionaries(dollar_keys | names, user_values, max_size=4)
