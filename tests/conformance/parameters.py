"""The read parameters of the World contract, and the suite's declarations of which test pins each.

Read methods and their parameters come from ``worlds_sdk.protocols`` itself, so a
parameter added to the contract is a parameter the suite must pin. Pins come from
the suite's source (``@pins(...)`` decorators), read with ``ast`` rather than by
importing, so deleting a test deletes its pins.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from collections import defaultdict
from functools import cache

from conformance.markers import rule_of
from conformance.plugin import SUITE_DIR
from worlds_sdk import protocols
from worlds_sdk.models import Pagination

READ_PROTOCOLS = {
    "runs.": protocols.Runs,
    "steps.": protocols.Steps,
    "events.": protocols.Events,
    "hooks.": protocols.Hooks,
    "": protocols.Streamer,
}
"""Where read methods live, by the prefix a test calls them with (``world.runs.get``, ``world.get_stream_info``)."""

WRITES = frozenset({"events.create", "write_to_stream", "close_stream"})

NOT_PINNED = {
    ("get_stream_chunks", "run_id"): "a stream is named by `name` alone (§5: writing needs no run); run_id is context",
    ("get_stream_info", "run_id"): "a stream is named by `name` alone (§5: writing needs no run); run_id is context",
}
"""Read parameters a World may ignore, with the reason; every other one must be pinned."""


def read_parameters() -> frozenset[tuple[str, str]]:
    """``(method, parameter)`` for every parameter of every read method; ``pagination`` by field."""
    out = set()
    for prefix, protocol in READ_PROTOCOLS.items():
        for name, function in inspect.getmembers(protocol, inspect.isfunction):
            method = f"{prefix}{name}"
            if name.startswith("_") or method in WRITES:
                continue
            for param in list(inspect.signature(function).parameters)[1:]:
                if param == "pagination":
                    out.update((method, f"pagination.{f.name}") for f in dataclasses.fields(Pagination))
                else:
                    out.add((method, param))
    return frozenset(out)


@cache
def pins() -> dict[tuple[str, str], list[str]]:
    """``(method, parameter)`` -> the suite tests that declare they pin it."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(SUITE_DIR.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name) and deco.func.id == "pins":
                    method, *params = [ast.literal_eval(arg) for arg in deco.args]
                    for param in params:
                        found[(method, param)].append(node.name)
    return dict(found)


def is_must(test: str) -> bool:
    ref = rule_of(test)
    return ref is not None and ref.level == "MUST"
