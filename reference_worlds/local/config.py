"""The local World's settings: a JSON-serialisable mapping, so another process can open the same World."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from worlds_sdk.settings import parse_settings

DEFAULT_DIR = ".worlds"
ENV_DIR = "WORLDS_LOCAL_DIR"


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalConfig:
    """Settings of one local World; every field has a default, so ``{}`` is a valid config.

    ``path`` is the world directory: ``None`` means ``$WORLDS_LOCAL_DIR``, else ``./.worlds``.
    """

    path: str | None = None
    deployment_id: str = "local"
    lease_seconds: float = 30.0
    poll_interval: float = 0.25
    max_attempts: int = 48
    handler_timeout: float = 900.0
    concurrency: int = 10
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    busy_timeout: float = 30.0
    shutdown_grace: float = 10.0

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> LocalConfig:
        """Parse a config; an unknown key or a wrong type is a :class:`ValidationError`, not ignored."""
        path = config.get("path")
        if isinstance(path, os.PathLike):
            config = {**config, "path": os.fspath(path)}
        return parse_settings(cls, config)

    def directory(self) -> Path:
        """The world directory this config names (not yet checked or created)."""
        return Path(self.path or os.environ.get(ENV_DIR) or DEFAULT_DIR).expanduser().absolute()

    def to_mapping(self) -> dict[str, Any]:
        """The JSON-serialisable form, with the directory made absolute so it means the same anywhere."""
        out = asdict(self)
        out["path"] = str(self.directory())
        return out
