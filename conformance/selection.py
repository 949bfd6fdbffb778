"""The World under test, resolved once per pytest session and kept in ``config.stash``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pytest

from worlds_sdk.backend import WorldBackend, WorldConfig
from worlds_sdk.capabilities import Capability


@dataclass(frozen=True)
class SelectedWorld:
    """What ``--world`` and its companions resolved to."""

    reference: str
    backend: WorldBackend
    settings: WorldConfig = field(default_factory=dict)
    spec_version: int = 3
    certify: bool = False
    hypothesis_profile: str = "default"

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.backend.capabilities

    @property
    def package_version(self) -> str:
        name = self.backend.distribution
        if not name:
            return "unknown"
        if name.startswith("npm:"):  # npm:<package>@<exact version>, resolved by the Node bridge
            return name.rpartition("@")[2]
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"


SELECTED = pytest.StashKey[SelectedWorld]()


def parse_world_config(text: str | None) -> dict[str, Any]:
    """``--world-config``: a JSON object, or ``key=value`` pairs separated by commas.

    Values of key=value pairs are parsed as JSON when they can be (numbers, booleans),
    else kept as strings.
    """
    if not text:
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise pytest.UsageError(f"--world-config: invalid JSON ({exc.msg} at {exc.pos})") from None
        if not isinstance(value, dict):
            raise pytest.UsageError("--world-config: expected a JSON object")
        return value
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = part.partition("=")
        if not sep or not key:
            raise pytest.UsageError(f"--world-config: expected key=value, got {part!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out
