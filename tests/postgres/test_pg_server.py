"""How the tests get a PostgreSQL server: the environment, testcontainers, or local binaries."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import psycopg
import pytest

from reference_worlds.postgres import server
from reference_worlds.postgres.server import LocalCluster, find_bindir, postgres_server
from worlds_sdk.errors import WorldUnavailableError

pytestmark = pytest.mark.postgres

BINDIR = find_bindir()
needs_binaries = pytest.mark.skipif(BINDIR is None, reason="no local PostgreSQL server binaries (initdb, pg_ctl)")


@needs_binaries
def test_throwaway_cluster_from_local_binaries_starts_and_is_removed() -> None:
    assert BINDIR is not None
    with LocalCluster(BINDIR) as cluster:
        root = cluster.root
        assert root is not None
        with psycopg.connect(cluster.url) as conn:
            settings: dict[str, str] = dict(conn.execute("SELECT name, setting FROM pg_settings").fetchall())
        assert settings["fsync"] == "off" and int(settings["max_connections"]) >= 200
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to an unprivileged user
            assert cluster.data_dir.stat().st_uid != 0
        cluster.restart()
        with psycopg.connect(cluster.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not root.exists()


def test_url_from_the_environment_is_used_as_is() -> None:
    with postgres_server({server.URL_ENV: "postgresql://someone@db.example/worlds"}) as found:
        assert (found.url, found.source, found.cluster) == (
            "postgresql://someone@db.example/worlds",
            server.URL_ENV,
            None,
        )


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]  # bound but not listening: connections are refused


def test_docker_detection_says_no_when_no_engine_answers(monkeypatch: pytest.MonkeyPatch, closed_port: int) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{closed_port}")
    assert server.docker_engine_answers(timeout=2.0) is False


def test_no_way_to_get_a_server_is_one_error_naming_all_three(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "docker_engine_answers", lambda timeout=2.0: False)
    monkeypatch.setattr(server, "find_bindir", lambda: None)
    with pytest.raises(WorldUnavailableError) as caught, postgres_server({}):
        pass
    message = str(caught.value)
    assert server.URL_ENV in message and "Docker" in message and "initdb" in message


PINNED_API = {"version": "1.44"}
"""An explicit Docker API version: building the request then contacts no engine (there is none here)."""


def test_the_testcontainers_request_is_a_throwaway_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    """The container testcontainers would start on a machine with Docker, checked on its own API object."""
    from testcontainers.community.postgres import PostgresContainer

    monkeypatch.setenv("POSTGRES_USER", "someone-else")  # testcontainers' default would take these
    monkeypatch.setenv("POSTGRES_DB", "elsewhere")

    container = server.container_request(PINNED_API)

    assert isinstance(container, PostgresContainer)  # its readiness check: psql inside the container answers
    assert container.image == server.IMAGE
    assert container.ports == {"5432": None}  # exposed, published on a free host port at start
    assert (container.username, container.dbname, container.driver) == (server.SUPERUSER, "postgres", "")
    settings = [f"{key}={value}" for key, value in server.THROWAWAY_SETTINGS.items()]
    assert container._command == ["postgres", *(arg for setting in settings for arg in ("-c", setting))]
    container._configure()  # what start() sends as the container's environment
    assert container.env == {
        "POSTGRES_USER": server.SUPERUSER,
        "POSTGRES_PASSWORD": container.password,
        "POSTGRES_DB": "postgres",
    }
    assert container.password != server.container_request(PINNED_API).password
