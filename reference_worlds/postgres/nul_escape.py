"""A reversible escape that lets strings with NUL characters through PostgreSQL.

PostgreSQL ``text`` cannot hold U+0000, and its JSON functions refuse ``\\u0000``
-- but step ids, step names and hook tokens are arbitrary strings, and event data
may hold any text. Every string crossing the boundary is therefore escaped with
U+0001 as the escape character: ``\\x01`` -> ``\\x01\\x01`` and ``\\x00`` ->
``\\x01\\x02``. For every string without those two characters (in practice, all
of them) the escape is the identity, so stored data stays readable and SQL
compares ids exactly as given. JSON text is escaped inside its string literals,
so the SQL functions extract escaped strings into escaped columns consistently.

The escape is applied in exactly one place, :class:`~.database.Database`: to
query parameters on the way in and to every string of a result row on the way
out (JSON documents are decoded by the driver first).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

_JSON_TOKEN = re.compile(r"\\(u000[01]|u[0-9a-fA-F]{4}|.)", re.DOTALL)
_TEXT_ESCAPED = re.compile("\x01[\x01\x02]")


def escape_text(value: str) -> str:
    if "\x00" in value or "\x01" in value:
        return value.replace("\x01", "\x01\x01").replace("\x00", "\x01\x02")
    return value


def unescape_text(value: str) -> str:
    if "\x01" in value:
        return _TEXT_ESCAPED.sub(lambda m: "\x01" if m.group(0)[1] == "\x01" else "\x00", value)
    return value


def _escape_json_token(match: re.Match[str]) -> str:
    token = match.group(1)
    if token == "u0000":
        return "\\u0001\\u0002"
    if token == "u0001":
        return "\\u0001\\u0001"
    return match.group(0)


def escape_json(text: str) -> str:
    """Escape the string literals of JSON ``text`` (control characters are always ``\\u`` escapes in JSON)."""
    if "\\u000" in text:
        return _JSON_TOKEN.sub(_escape_json_token, text)
    return text


def escape_params(params: Sequence[Any] | Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
    """Query parameters with every ``str`` (also inside lists) escaped; JSON text must use :func:`escape_json`."""
    if isinstance(params, Mapping):
        return {k: _escape_param(v) for k, v in params.items()}
    return [_escape_param(v) for v in params]


def _escape_param(value: Any) -> Any:
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, list):
        return [_escape_param(v) for v in value]
    return value


_HOLDS_NO_TEXT = frozenset({type(None), bool, int, float, bytes, datetime})
"""Result value types passed through as they are: most columns of a row, so checked first (by type, cheaply)."""


def unescape_value(value: Any) -> Any:
    """A result value with every string unescaped: text columns, rows (dicts or tuples), decoded JSON (keys too)."""
    if isinstance(value, str):
        return unescape_text(value)
    if isinstance(value, tuple):
        return tuple([v if type(v) in _HOLDS_NO_TEXT else unescape_value(v) for v in value])
    if isinstance(value, dict):
        return {unescape_text(k): v if type(v) in _HOLDS_NO_TEXT else unescape_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _HOLDS_NO_TEXT else unescape_value(v) for v in value]
    return value
