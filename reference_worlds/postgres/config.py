"""The Postgres World's settings: JSON-serialisable, so another process opens the same World."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from worlds_sdk.errors import ValidationError, WorldUnavailableError
from worlds_sdk.settings import parse_settings

URL_ENV = "WORLDS_POSTGRES_URL"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")


def check_schema(schema: str) -> str:
    """A schema name is a plain lowercase identifier: safe in SQL, search_path and NOTIFY channels."""
    if not isinstance(schema, str) or not _SCHEMA_RE.match(schema):
        raise ValidationError("must match [a-z_][a-z0-9_]{0,39}", field="config.schema")
    return schema


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresConfig:
    """Settings of one Postgres World; ``url=None`` means ``$WORLDS_POSTGRES_URL``.

    One database can hold many Worlds, one per ``schema``.
    """

    url: str | None = None
    schema: str = "worlds"
    auto_migrate: bool = True
    deployment_id: str = "postgres"
    pool_size: int = 10
    connect_timeout: float = 10.0
    lease_seconds: float = 30.0
    poll_interval: float = 1.0
    max_attempts: int = 48
    handler_timeout: float = 900.0
    concurrency: int = 10
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    shutdown_grace: float = 10.0

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> PostgresConfig:
        """Parse a config; an unknown key or a wrong type is a :class:`ValidationError`, never ignored."""
        parsed = parse_settings(cls, config)
        check_schema(parsed.schema)
        return parsed

    def conninfo(self) -> str:
        url = self.url or os.environ.get(URL_ENV)
        if not url:
            raise WorldUnavailableError(f"no PostgreSQL URL: set the config key 'url' or ${URL_ENV}")
        return url

    def to_mapping(self) -> dict[str, Any]:
        return asdict(self)
