"""parse_settings: a World's JSON config into its settings dataclass, strictly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from worlds_sdk.errors import ValidationError
from worlds_sdk.settings import parse_settings


@dataclass(frozen=True, kw_only=True)
class Settings:
    url: str | None = None
    name: str = "x"
    size: int = 1
    timeout: float = 1.0
    enabled: bool = True


def test_defaults_and_values_are_kept() -> None:
    assert parse_settings(Settings, {}) == Settings()
    assert parse_settings(Settings, {"url": "u", "size": 3, "timeout": 2}) == Settings(url="u", size=3, timeout=2)
    assert parse_settings(Settings, {"url": None}).url is None
    assert parse_settings(Settings, {"enabled": False}).enabled is False


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"colour": "blue"}, "config"),
        ({"name": ""}, "config.name"),
        ({"name": None}, "config.name"),
        ({"url": ""}, "config.url"),
        ({"url": 5}, "config.url"),
        ({"size": 2.5}, "config.size"),
        ({"size": 0}, "config.size"),
        ({"size": True}, "config.size"),
        ({"timeout": -1.0}, "config.timeout"),
        ({"timeout": "1"}, "config.timeout"),
        ({"enabled": 0}, "config.enabled"),
        ({"enabled": "false"}, "config.enabled"),
    ],
)
def test_unknown_keys_and_wrong_types_are_errors(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_settings(Settings, config)
    assert caught.value.field == field
