"""Keyset pagination over ``seq``, the insertion order every table of the World carries.

The cursor is the ``seq`` of the last row of a page (opaque to callers) and means
"strictly after". Appends to one run are serialised by the run's row lock, so a
run's event ``seq`` grows in commit order: a page boundary never skips or repeats
an event, and a cursor taken at the end later yields the events appended since
(EV-11). An empty page returns the cursor it was given, for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from worlds_sdk.errors import ValidationError
from worlds_sdk.models import MAX_PAGE_LIMIT, Page, Pagination, ResolveData, SortOrder

from .database import Database, Row
from .queries import query

T = TypeVar("T")


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ValidationError(f"must be an integer from 1 to {MAX_PAGE_LIMIT}", field="limit")
    return limit


def check_resolve_data(resolve_data: ResolveData) -> ResolveData:
    if resolve_data not in ("all", "none"):
        raise ValidationError("must be 'all' or 'none'", field="resolve_data")
    return resolve_data


def _parse_cursor(cursor: str) -> int:
    if not isinstance(cursor, str) or not cursor.isdigit():
        raise ValidationError("is not a cursor this list returned", field="cursor")
    return int(cursor)


async def page_of(
    db: Database,
    base: str,
    where: Sequence[str],
    params: Sequence[Any],
    pagination: Pagination,
    default_order: SortOrder,
    build: Callable[[Row], T],
) -> Page[T]:
    """One page of query ``base`` filtered by the ``where`` conditions (placeholders filled from ``params``)."""
    limit = check_limit(pagination.limit)
    order = pagination.sort_order or default_order
    if order not in ("asc", "desc"):
        raise ValidationError("must be 'asc' or 'desc'", field="sort_order")
    clauses, values = list(where), list(params)
    if pagination.cursor is not None:
        clauses.append("seq > %s" if order == "asc" else "seq < %s")
        values.append(_parse_cursor(pagination.cursor))
    text = query(base)
    if clauses:
        text += " WHERE " + " AND ".join(clauses)
    text += f" ORDER BY seq {order.upper()} LIMIT %s"
    rows = await db.fetchall(text, [*values, limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    cursor = str(rows[-1]["seq"]) if rows else pagination.cursor
    return Page(data=[build(row) for row in rows], cursor=cursor, has_more=has_more)
