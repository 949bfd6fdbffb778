"""Checks of list arguments that every World makes the same way.

Keyset queries differ per store, but what a valid ``limit``, ``sort_order`` and
``resolve_data`` is, and the "fetch one more row to learn ``has_more``" step, do
not; keeping them here gives every World the same errors for the same bad input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from .errors import ValidationError
from .models import MAX_PAGE_LIMIT, Pagination, ResolveData, SortOrder

R = TypeVar("R")


def check_limit(limit: int) -> int:
    """A page size from 1 to :data:`~worlds_sdk.models.MAX_PAGE_LIMIT`; anything else is a ValidationError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ValidationError(f"must be an integer from 1 to {MAX_PAGE_LIMIT}", field="limit")
    return limit


def check_resolve_data(resolve_data: ResolveData) -> ResolveData:
    if resolve_data not in ("all", "none"):
        raise ValidationError("must be 'all' or 'none'", field="resolve_data")
    return resolve_data


def sort_order(pagination: Pagination, default: SortOrder) -> SortOrder:
    """The order a list is read in: the caller's choice, else the list's default."""
    order = pagination.sort_order or default
    if order not in ("asc", "desc"):
        raise ValidationError("must be 'asc' or 'desc'", field="sort_order")
    return order


def split_page(rows: Sequence[R], limit: int) -> tuple[Sequence[R], bool]:
    """Rows fetched with ``LIMIT limit + 1``: the page, and whether more rows follow it."""
    return rows[:limit], len(rows) > limit
