"""Keyset pagination: opaque cursors meaning "strictly after", stable under concurrent appends.

A cursor is the sort key of the last row of a page: ``"<int>"`` for the event
log's sequence, ``"<int>:<id>"`` for lists sorted by creation time then id.
Because rows are only ever appended with keys greater than every key already
committed (the sequence grows; creation times are clamped to never go back), a
page boundary never skips or repeats a row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from worlds_sdk.errors import ValidationError
from worlds_sdk.models import Page, Pagination, SortOrder
from worlds_sdk.pagination import check_limit, sort_order, split_page

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Keyset:
    """The sort columns of one list: an integer first, then optionally a text tiebreaker."""

    columns: tuple[str, ...]
    default_order: SortOrder

    def query(
        self, conn: sqlite3.Connection, select: str, where: Sequence[str], params: Sequence[Any], pagination: Pagination
    ) -> tuple[Sequence[sqlite3.Row], str | None, bool]:
        """Run ``select`` (``SELECT … FROM …``) for one page: rows, next cursor, has_more."""
        limit = check_limit(pagination.limit)
        order = sort_order(pagination, self.default_order)
        clauses, values = list(where), list(params)
        if pagination.cursor is not None:
            marks = ", ".join("?" * len(self.columns))
            clauses.append(f"({', '.join(self.columns)}) {'>' if order == 'asc' else '<'} ({marks})")
            values.extend(self._parse(pagination.cursor))
        sql = select
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY " + ", ".join(f"{c} {order.upper()}" for c in self.columns) + " LIMIT ?"
        rows, has_more = split_page(conn.execute(sql, [*values, limit + 1]).fetchall(), limit)
        cursor = ":".join(str(rows[-1][c]) for c in self.columns) if rows else pagination.cursor
        return rows, cursor, has_more

    def _parse(self, cursor: str) -> list[Any]:
        parts = cursor.split(":", len(self.columns) - 1) if isinstance(cursor, str) else []
        if len(parts) != len(self.columns) or not parts[0].lstrip("-").isdigit():
            raise ValidationError("is not a cursor this list returned", field="cursor")
        return [int(parts[0]), *parts[1:]]


def page_of(
    conn: sqlite3.Connection,
    keyset: Keyset,
    select: str,
    where: Sequence[str],
    params: Sequence[Any],
    pagination: Pagination,
    build: Callable[[sqlite3.Row], T],
) -> Page[T]:
    rows, cursor, has_more = keyset.query(conn, select, where, params, pagination)
    return Page(data=[build(row) for row in rows], cursor=cursor, has_more=has_more)
