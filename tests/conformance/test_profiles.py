"""The suite's hypothesis profiles: shrinking is bounded where a failing World would otherwise cost minutes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings
from hypothesis.internal.conjecture import engine

from conformance import profiles


@pytest.fixture
def restored() -> Iterator[None]:
    before, loaded = engine.MAX_SHRINKING_SECONDS, settings.default
    yield
    engine.MAX_SHRINKING_SECONDS = before
    settings.register_profile("_restored", parent=loaded)
    settings.load_profile("_restored")


@pytest.mark.parametrize(("profile", "seconds"), [("default", 60), ("ci", 60), ("nightly", 300)])
def test_shrinking_is_capped_per_profile(restored: None, profile: str, seconds: int) -> None:
    engine.MAX_SHRINKING_SECONDS = 300  # hypothesis's own limit
    assert profiles.register_and_load(profile) == profile
    assert seconds == engine.MAX_SHRINKING_SECONDS
