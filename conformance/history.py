"""Jepsen-style queue histories: record every enqueue, delivery and ack, then judge.

A consumer (in the test process or a child) appends one JSON line per delivery
and per acknowledgement to a log file, flushed and fsynced before it goes on, so
the record survives the consumer being SIGKILLed. The checker then counts:

* **lost** -- an enqueue the World accepted that was never delivered and acked: must be 0;
* **unexpected** -- a delivery of something never enqueued: must be 0;
* **duplicates** -- a message acked more than once: allowed unless the World
  declares effectively-once delivery;
* **attempt/id errors** -- a message whose id changed across deliveries, or whose
  attempts did not start at 1 and increase (Q-2).

:func:`stream_problems` judges the deliveries of one message as a single delivery
stream (Q-3, Q-5): one message id, attempts increasing, never two deliveries held
at once. It never counts deliveries: a redelivery after an ack is at-least-once
delivery at work (Q-1), unless the World declares effectively-once delivery.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worlds_sdk.models import MessageMeta


class DeliveryLog:
    """An append-only, fsynced record of deliveries and acks (safe across processes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(self, kind: str, message: Any, meta: MessageMeta, **extra: Any) -> None:
        key = message.get("key") if isinstance(message, dict) else None
        line = {
            "ev": kind,
            "key": key,
            "message_id": meta.message_id,
            "attempt": meta.attempt,
            "queue": meta.queue_name,
            "pid": os.getpid(),
            "t": time.time(),
            **extra,
        }
        data = (json.dumps(line) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open() as f:
            return [json.loads(line) for line in f if line.endswith("\n")]


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    id_or_attempt_errors: list[str] = field(default_factory=list)

    def problems(self, *, effectively_once: bool) -> list[str]:
        out = []
        if self.lost:
            out.append(f"lost (accepted, never delivered+acked): {self.lost[:10]}")
        if self.unexpected:
            out.append(f"unexpected deliveries: {self.unexpected[:10]}")
        if self.id_or_attempt_errors:
            out.append(f"message id / attempt errors: {self.id_or_attempt_errors[:10]}")
        if effectively_once and self.duplicates:
            out.append(f"duplicates from an effectively-once World: {self.duplicates[:10]}")
        return out


def judge(enqueued: dict[str, str], entries: list[dict[str, Any]]) -> Verdict:
    """``enqueued`` maps each message's key to the id ``queue()`` returned."""
    verdict = Verdict()
    acks: dict[str, int] = defaultdict(int)
    attempts: dict[str, list[int]] = defaultdict(list)
    for e in entries:
        key = e["key"]
        if key not in enqueued:
            verdict.unexpected.append(str(key))
            continue
        if e["message_id"] != enqueued[key]:
            verdict.id_or_attempt_errors.append(f"{key}: id {e['message_id']} != {enqueued[key]}")
        if e["ev"] == "deliver":
            attempts[key].append(e["attempt"])
        elif e["ev"] == "ack":
            acks[key] += 1
    for key in enqueued:
        if acks[key] == 0:
            verdict.lost.append(key)
        elif acks[key] > 1:
            verdict.duplicates.append(key)
        seen = attempts[key]
        if seen and seen[0] != 1:
            verdict.id_or_attempt_errors.append(f"{key}: first attempt {seen[0]} (must be 1)")
        if any(b <= a for a, b in itertools.pairwise(seen)):
            verdict.id_or_attempt_errors.append(f"{key}: attempts not increasing {seen}")
    return verdict


def stream_problems(entries: list[dict[str, Any]], key: str, message_id: str, *, effectively_once: bool) -> list[str]:
    """What makes the deliveries of ``key`` more than one delivery stream of ``message_id``.

    A ``deliver`` entry opens a delivery and an ``ack`` or ``release`` entry of the same
    process closes it; a delivery that starts while another is open was handed out twice
    at the same time, which no lease allows.
    """
    mine = [e for e in entries if e["key"] == key]
    problems = [f"delivered as {e['message_id']}, not {message_id}" for e in mine if e["message_id"] != message_id]
    attempts = [e["attempt"] for e in mine if e["ev"] == "deliver"]
    if any(b <= a for a, b in itertools.pairwise(attempts)):
        problems.append(f"attempts {attempts} do not increase: a second delivery stream")
    held: list[int] = []
    for e in mine:
        if e["ev"] == "deliver":
            if held:
                problems.append(f"delivered to pid {e['pid']} (attempt {e['attempt']}) while held by pid {held}")
            held.append(e["pid"])
        elif e["pid"] in held:
            held.remove(e["pid"])
    if effectively_once and len(attempts) > 1:
        problems.append(f"{len(attempts)} deliveries from an effectively-once World")
    return problems
