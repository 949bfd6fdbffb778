"""Bad configuration fails with ONE clear error, never a hang or a driver exception."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from reference_worlds.postgres import PostgresConfig, PostgresWorld
from reference_worlds.postgres.server import free_port
from worlds_sdk.errors import ValidationError, WorldUnavailableError

pytestmark = pytest.mark.postgres


def _start(config: dict[str, Any]) -> None:
    async def body() -> None:
        world = PostgresWorld(config)
        try:
            await world.start()
        finally:
            await world.close()

    asyncio.run(body())


def _with_netloc(url: str, *, password: str | None = None, port: int | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    netloc = f"{user}:{password or parts.password}@{parts.hostname}:{port or parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_unreachable_server_is_world_unavailable(pg_config: dict[str, Any]) -> None:
    url = _with_netloc(pg_config["url"], port=free_port())
    with pytest.raises(WorldUnavailableError, match="PostgreSQL is unavailable"):
        _start({**pg_config, "url": url, "connect_timeout": 2})


def test_wrong_password_is_world_unavailable_naming_authentication(pg_config: dict[str, Any]) -> None:
    url = _with_netloc(pg_config["url"], password="not-the-password")
    with pytest.raises(WorldUnavailableError, match="authentication failed") as caught:
        _start({**pg_config, "url": url})
    assert "not-the-password" not in str(caught.value)


def test_missing_url_names_the_setting_and_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLDS_POSTGRES_URL", raising=False)
    with pytest.raises(WorldUnavailableError, match="WORLDS_POSTGRES_URL"):
        _start({"schema": "nowhere"})


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"schema": "Robert'); DROP TABLE runs;--"}, "config.schema"),
        ({"lease_seconds": 0}, "config.lease_seconds"),
        ({"pool_size": 2.5}, "config.pool_size"),
        ({"url": ""}, "config.url"),
        ({"colour": "blue"}, "config"),
    ],
)
def test_malformed_config_is_a_validation_error(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PostgresConfig.from_mapping(config)
    assert caught.value.field == field


def test_config_round_trips_through_json_form() -> None:
    config = PostgresConfig.from_mapping({"url": "postgresql://h/db", "schema": "w2", "lease_seconds": 5})
    assert PostgresConfig.from_mapping(config.to_mapping()) == config
