"""``worlds_sdk.memory``: the in-memory World's own behaviour beyond the suite (which it passes, see tests/cli)."""

from __future__ import annotations

import asyncio

import pytest

from worlds_sdk.errors import ValidationError
from worlds_sdk.memory import STATES, MemoryWorld
from worlds_sdk.models import Pagination


@pytest.mark.parametrize(
    ("pagination", "field"),
    [(Pagination(cursor="not-a-cursor"), "cursor"), (Pagination(limit=0), "limit"), (Pagination(limit=1001), "limit")],
)
def test_bad_list_arguments_are_validation_errors(pagination: Pagination, field: str) -> None:
    """A cursor the World never returned is bad input, not a crash (it was a bare ValueError)."""
    world = MemoryWorld({"name": "bad-list-arguments"})
    try:
        with pytest.raises(ValidationError) as caught:
            asyncio.run(world.runs.list(pagination=pagination))
        assert caught.value.field == field
    finally:
        STATES.pop("bad-list-arguments", None)
