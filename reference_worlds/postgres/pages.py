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
from worlds_sdk.models import Page, Pagination, SortOrder
from worlds_sdk.pagination import check_limit, sort_order, split_page

from .database import Database, Row
from .queries import query

T = TypeVar("T")


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
    order = sort_order(pagination, default_order)
    clauses, values = list(where), list(params)
    if pagination.cursor is not None:
        clauses.append("seq > %s" if order == "asc" else "seq < %s")
        values.append(_parse_cursor(pagination.cursor))
    text = query(base)
    if clauses:
        text += " WHERE " + " AND ".join(clauses)
    text += f" ORDER BY seq {order.upper()} LIMIT %s"
    rows, has_more = split_page(await db.fetchall(text, [*values, limit + 1]), limit)
    cursor = str(rows[-1]["seq"]) if rows else pagination.cursor
    return Page(data=[build(row) for row in rows], cursor=cursor, has_more=has_more)
