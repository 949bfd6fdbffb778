"""Ids: prefixed ULIDs that sort in minting order, even many within one millisecond.

Tests that pin the time inside a ULID reset the module's "last id" state through
``monkeypatch``, so a fixed (possibly future) time never leaks into ids minted by
other tests in the same process.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worlds_sdk import ids
from worlds_sdk.errors import ValidationError

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ULID_MS = 253402300799999  # 9999-12-31T23:59:59.999Z, the last instant a datetime can hold


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the previous id, as in a new process; restored afterwards."""
    monkeypatch.setattr(ids, "_last_ms", -1)
    monkeypatch.setattr(ids, "_last_rand", 0)


def as_int(ulid: str) -> int:
    return int("".join(f"{ids.ALPHABET.index(c):05b}" for c in ulid), 2)


@pytest.mark.parametrize("prefix", ids.PREFIXES)
def test_new_id_is_prefix_and_a_26_char_crockford_ulid(prefix: str) -> None:
    head, _, body = ids.new_id(prefix).partition("_")
    assert head == prefix
    assert len(body) == 26 and set(body) <= CROCKFORD
    assert body[0] <= "7"  # 128 bits


def test_new_id_rejects_an_unknown_prefix() -> None:
    with pytest.raises(ValueError, match="unknown id prefix"):
        ids.new_id("run")


def test_ids_increase_strictly_within_one_millisecond() -> None:
    now_ms = int(time.time() * 1000)
    batch = [ids.ulid(now_ms) for _ in range(5000)]
    assert len({u[:10] for u in batch}) == 1  # one millisecond
    assert batch == sorted(batch) and len(set(batch)) == len(batch)


def test_same_millisecond_increments_the_random_part(fresh: None) -> None:
    first, second = ids.ulid(1_700_000_000_000), ids.ulid(1_700_000_000_000)
    assert as_int(second) == as_int(first) + 1


def test_many_new_ids_sort_in_minting_order() -> None:
    batch = [ids.new_id("evnt") for _ in range(20000)]
    assert batch == sorted(batch) and len(set(batch)) == len(batch)


def test_a_clock_going_backwards_does_not_break_the_order(fresh: None) -> None:
    later = ids.ulid(1_700_000_001_000)
    earlier_clock = ids.ulid(1_700_000_000_000)
    assert earlier_clock > later
    assert earlier_clock[:10] == later[:10]


def test_ids_from_many_threads_are_unique_and_ordered_per_thread() -> None:
    minted: list[list[str]] = [[] for _ in range(4)]

    def mint(out: list[str]) -> None:
        out.extend(ids.new_id("msg") for _ in range(2000))

    threads = [threading.Thread(target=mint, args=(out,)) for out in minted]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({i for out in minted for i in out}) == 8000
    assert all(out == sorted(out) for out in minted)


def test_parse_ulid_time_of_a_fresh_id_is_now() -> None:
    before = datetime.now(UTC)
    minted = ids.parse_ulid_time(ids.new_id("wrun"))
    assert before - timedelta(milliseconds=1) < minted <= datetime.now(UTC)


def test_parse_ulid_time_known_vector() -> None:
    """The reference ULID implementation decodes this id to 1469918176385 ms."""
    assert ids.parse_ulid_time("01ARYZ6S41TSV4RRFFQ69G5FAV") == EPOCH + timedelta(milliseconds=1469918176385)


@given(st.integers(min_value=0, max_value=MAX_ULID_MS))
def test_parse_ulid_time_is_exact_to_the_millisecond(ms: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ids, "_last_ms", -1)
        ulid = ids.ulid(ms)
    expected = EPOCH + timedelta(milliseconds=ms)
    assert ids.parse_ulid_time(ulid) == expected
    assert ids.parse_ulid_time("wait_" + ulid.lower()) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("0" * 25, id="too short"),
        pytest.param("0" * 27, id="too long"),
        pytest.param("0" * 25 + "U", id="U is not Crockford"),
        pytest.param("8" + "0" * 25, id="above 128 bits"),
        pytest.param("7ZZZZZZZZZ" + "0" * 16, id="after year 9999"),
    ],
)
def test_parse_ulid_time_rejects_non_ulids_as_validation_errors(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        ids.parse_ulid_time(value)
    assert info.value.field == "run_id"
