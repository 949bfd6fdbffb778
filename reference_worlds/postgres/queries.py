"""The named queries of ``sql/queries.sql``, loaded once."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME_RE = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _all() -> dict[str, str]:
    text = resources.files("reference_worlds.postgres").joinpath("sql", "queries.sql").read_text("utf-8")
    parts = _NAME_RE.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]; a body ends before the next name
    queries = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
        queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries


def query(name: str) -> str:
    """The text of query ``name``; a ``KeyError`` names a query that does not exist."""
    return _all()[name]
