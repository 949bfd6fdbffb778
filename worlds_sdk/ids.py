"""Identifiers: prefixed, monotonic ULIDs.

Ids sort by creation time, so a World can page by id and the runtime can read a
run's age from its id. Within one process, ids minted in the same millisecond
still increase (the random part is incremented), which keeps a run's event ids
in append order without a shared counter.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta

from .errors import ValidationError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(ALPHABET)}
PREFIXES = ("wrun", "evnt", "step", "hook", "wait", "msg")

RUN_ID_MAX_AGE = timedelta(hours=24)
RUN_ID_MAX_SKEW = timedelta(minutes=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars))


def ulid(now_ms: int | None = None) -> str:
    """A 26-character ULID, strictly greater than the previous one from this process."""
    global _last_ms, _last_rand
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # leave room to increment
        _last_ms, _last_rand = ms, rand
    return _encode(ms, 10) + _encode(rand, 16)


def ulid_at(ms: int) -> str:
    """A ULID for an explicit time (not monotonic): for tests and imports of old data."""
    return _encode(ms, 10) + _encode(int.from_bytes(os.urandom(10), "big"), 16)


def new_id(prefix: str) -> str:
    """A fresh id such as ``wrun_01J...``; ``prefix`` is one of :data:`PREFIXES`."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{ulid()}"


def parse_ulid_time(value: str) -> datetime:
    """The creation time inside a ULID (with or without a ``prefix_``)."""
    raw = (value.split("_", 1)[1] if "_" in value else value).upper()
    # A ULID's 130 bits hold 128: the first character is at most "7".
    if len(raw) != 26 or raw[0] > "7" or any(c not in _DECODE for c in raw):
        raise ValidationError("is not a valid ULID", field="run_id")
    ms = 0
    for c in raw[:10]:
        ms = ms * 32 + _DECODE[c]
    try:
        return _EPOCH + timedelta(milliseconds=ms)  # exact, unlike a float timestamp
    except OverflowError as exc:  # beyond year 9999
        raise ValidationError("ULID time is out of range", field="run_id") from exc


def check_client_run_id(run_id: str, now: datetime) -> None:
    """EV-3: a client-supplied run id is ``wrun_<ULID>`` minted recently.

    The window (24 h back, 5 min ahead) stops a client from forging ids that
    sort before existing runs or far in the future.
    """
    if not run_id.startswith("wrun_"):
        raise ValidationError("must start with 'wrun_'", field="run_id")
    created = parse_ulid_time(run_id)
    if created < now - RUN_ID_MAX_AGE:
        raise ValidationError("ULID time is more than 24 h in the past", field="run_id")
    if created > now + RUN_ID_MAX_SKEW:
        raise ValidationError("ULID time is more than 5 min in the future", field="run_id")
