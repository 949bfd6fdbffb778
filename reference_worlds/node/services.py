"""Services an npm World's manifest entry asks for, started here instead of in Docker.

Upstream's CI starts each ``services`` entry as a container. There is no Docker
on the machines this project targets, so a service is satisfied by what runs
natively: ``postgres`` by the Postgres World's own server bootstrap
(:mod:`reference_worlds.postgres.server`), with a fresh database per instance.
A service we cannot start is a :class:`ServiceUnavailable` naming it, raised
while the sandbox opens: the World was not judged, it did not fail.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from .errors import BridgeError


class ServiceUnavailable(BridgeError):
    """A service the World needs cannot be started on this machine."""


class RunningService(Protocol):
    """A started service: each instance gets its own, empty database on it."""

    schemes: tuple[str, ...]

    def database(self) -> AbstractContextManager[str]:
        """A fresh database; yields its URL, drops it on exit."""
        ...


class _Postgres:
    """Databases copied from the template; the next one is made in the background while a test runs.

    A copy takes about 0.4 s here and the suite opens a few hundred instances, so
    making it ahead of time takes most of that off the suite's wall time. The
    copy is untouched until handed out, so it is as fresh as one made on demand.
    """

    schemes: tuple[str, ...] = ("postgres", "postgresql")

    def __init__(self, url: str, template: str) -> None:
        self.url = url
        self.template = template
        self._maker = ThreadPoolExecutor(1, thread_name_prefix="npm-world-db")
        self._next: Future[str] | None = None

    def _create(self) -> str:
        name = f"w_{secrets.token_hex(6)}"
        _execute(self.url, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    @contextmanager
    def database(self) -> Iterator[str]:
        name = self._next.result() if self._next is not None else self._create()
        self._next = self._maker.submit(self._create)
        try:
            yield with_database(self.url, name)
        finally:
            _drop(self.url, name)

    def close(self) -> None:
        """Drop the database made ahead and not used."""
        if self._next is not None:
            with contextlib.suppress(Exception):
                _drop(self.url, self._next.result())
        self._maker.shutdown()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _execute(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def _drop(url: str, name: str) -> None:
    _execute(
        url,
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        f'DROP DATABASE IF EXISTS "{name}"',
    )


@contextmanager
def postgres_service(prepare: PrepareTemplate) -> Iterator[RunningService]:
    """The Postgres World's server, and a template database the entry's ``setup`` has run on.

    Instances are copies of the template (``CREATE DATABASE … TEMPLATE``): the
    same state as running ``setup`` on each, in a tenth of the time.
    """
    try:
        from reference_worlds.postgres.server import postgres_server
    except ImportError as exc:  # psycopg missing
        raise ServiceUnavailable(f"service 'postgres' needs worlds-sdk[postgres]: {exc}") from None
    with postgres_server() as server:
        template = f"tmpl_{secrets.token_hex(6)}"
        _execute(server.url, f'CREATE DATABASE "{template}"')
        service = _Postgres(server.url, template)
        try:
            prepare(with_database(server.url, template))
            yield service
        finally:
            service.close()
            _drop(server.url, template)


class PrepareTemplate(Protocol):
    def __call__(self, url: str) -> None: ...
