"""Find or start a PostgreSQL server for tests, ``worlds test postgres``, tox and CI.

Three ways, tried in order, so a developer needs no setup at all:

1. ``WORLDS_POSTGRES_URL`` -- a server someone else runs (CI service, docker compose);
2. testcontainers (``postgres:15``) when a Docker engine answers -- checked with a
   short ping, never a hang when only the docker CLI is installed;
3. a throwaway cluster from the local server binaries (``initdb`` + ``pg_ctl``) in a
   temp dir on a free port, removed afterwards.

If none is possible, one :class:`~worlds_sdk.errors.WorldUnavailableError` names all
three: a test run must never silently skip the Postgres World.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worlds_sdk.errors import WorldUnavailableError

URL_ENV = "WORLDS_POSTGRES_URL"
IMAGE = "postgres:15"
SUPERUSER = "postgres"
FALLBACK_OS_USER = "worlds-postgres"

# Settings for the THROWAWAY test cluster only: fsync/full_page_writes off make
# initdb and every commit fast, which is fine for data that is deleted after the
# run, but would be data loss waiting to happen on a real server. A commit still
# write()s its WAL before it returns (synchronous_commit stays on), so committed
# data survives a crash of the server process -- which the fault tests do; only
# an OS crash could lose it. (synchronous_commit=off loses the last ~0.6 s of
# acknowledged commits when the server is killed: a test caught exactly that.)
THROWAWAY_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "64MB",
    "max_connections": "200",
    "max_parallel_workers_per_gather": "0",
}

NO_SERVER_MESSAGE = (
    "no PostgreSQL server for the Postgres World; provide one of: "
    f"(1) {URL_ENV}=postgresql://user:password@host:port/db, "
    "(2) a running Docker engine (testcontainers starts postgres:15), or "
    "(3) the PostgreSQL server binaries (initdb, pg_ctl) on PATH, via pg_config, "
    "or under /usr/lib/postgresql/*/bin"
)


@dataclass
class PostgresServer:
    """A reachable server: ``url`` connects as a superuser to a maintenance database."""

    url: str
    source: str
    cluster: LocalCluster | None = field(default=None, repr=False)


DURABLE_SETTINGS: Mapping[str, str] = {"max_connections": "200"}
"""A local cluster with PostgreSQL's durable defaults (fsync on), for honest benchmark figures."""


@contextmanager
def postgres_server(environ: Mapping[str, str] | None = None, *, durable: bool = False) -> Iterator[PostgresServer]:
    """Locate or start a server (see the module docstring) and stop what was started.

    ``durable`` starts a local cluster with fsync on instead of the throwaway settings.
    """
    env = os.environ if environ is None else environ
    url = env.get(URL_ENV)
    if url:
        yield PostgresServer(url=url, source=URL_ENV)
        return
    if docker_engine_answers():
        with _container() as url:
            yield PostgresServer(url=url, source="testcontainers")
        return
    bindir = find_bindir()
    if bindir is None:
        raise WorldUnavailableError(NO_SERVER_MESSAGE)
    with LocalCluster(bindir, settings=DURABLE_SETTINGS if durable else THROWAWAY_SETTINGS) as cluster:
        yield PostgresServer(url=cluster.url, source=f"local binaries in {bindir}", cluster=cluster)


def docker_engine_answers(timeout: float = 2.0) -> bool:
    """True if a Docker engine replies to a ping within ``timeout`` (the CLI alone is not enough)."""
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextmanager
def _container() -> Iterator[str]:
    with container_request() as container:
        yield container.get_connection_url()


def container_request(docker_client_kw: Mapping[str, Any] | None = None) -> Any:
    """The testcontainers ``PostgresContainer`` to start: :data:`IMAGE` as a throwaway server.

    The server runs with :data:`THROWAWAY_SETTINGS` as ``-c`` flags; the superuser
    is :data:`SUPERUSER` with a fresh random password, on the ``postgres``
    database, never taken from the host's ``POSTGRES_*`` variables (testcontainers'
    default); the URL has no SQLAlchemy driver suffix, so psycopg can use it.
    Readiness is testcontainers' own check for this image: it runs ``psql -c 'select
    version()'`` inside the container until it answers. ``docker_client_kw`` goes to
    the Docker client (the tests pin an API version so that building the request
    contacts no engine).
    """
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers before the community modules moved
        from testcontainers.postgres import PostgresContainer

    flags = [arg for key, value in THROWAWAY_SETTINGS.items() for arg in ("-c", f"{key}={value}")]
    container = PostgresContainer(
        IMAGE,
        username=SUPERUSER,
        password=secrets.token_urlsafe(16),
        dbname="postgres",
        driver=None,
        docker_client_kw=dict(docker_client_kw or {}),
    )
    return container.with_command(["postgres", *flags])


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH, then ``pg_config``, then Debian's layout."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None and _has_binaries(Path(out.stdout.strip())):
            return Path(out.stdout.strip())
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major_version, reverse=True)
    return next((Path(c) for c in candidates if _has_binaries(Path(c))), None)


def _has_binaries(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()


def _major_version(bindir: str) -> int:
    name = Path(bindir).parent.name
    return int(name) if name.isdigit() else 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalCluster:
    """A throwaway cluster in a temp dir: ``initdb``, ``pg_ctl start``, and on exit stop + delete.

    initdb refuses to run as root, so as root the binaries run as the Debian
    ``postgres`` user (or a system user created for this), owning the temp dir.
    Password auth over TCP (so a wrong password is a real error), trust on the
    private unix socket.
    """

    def __init__(self, bindir: Path, *, settings: Mapping[str, str] = THROWAWAY_SETTINGS) -> None:
        self.bindir = bindir
        self.settings = dict(settings)
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.root: Path | None = None
        self._user = _unprivileged_user() if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def __enter__(self) -> LocalCluster:
        self.root = Path(tempfile.mkdtemp(prefix="worlds-pg-"))
        try:
            if self._user is not None:
                os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
            self._initdb()
            self.start()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop("immediate")
        finally:
            self._remove()

    def start(self) -> None:
        """Start the server (again): a free port is chosen the first time and then kept."""
        for _ in range(3):
            self.port = self.port or free_port()
            options = {**self.settings, "port": str(self.port), "listen_addresses": "127.0.0.1"}
            options["unix_socket_directories"] = str(self.root)
            flags = " ".join(f"-c {k}={v}" for k, v in options.items())
            result = self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                flags,
                "start",
                check=False,
            )
            if result.returncode == 0:
                return
            self.port = 0  # most likely the port was taken between choosing and binding it
        raise WorldUnavailableError(f"could not start PostgreSQL from {self.bindir}: {self.log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode``; ``immediate`` is a crash (the next start recovers from WAL)."""
        if self.root is not None and (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _initdb(self) -> None:
        assert self.root is not None
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._user is not None:
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            f"--username={SUPERUSER}",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self._user is not None:
            kwargs.update(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = subprocess.run(
            [str(self.bindir / tool), *args], capture_output=True, text=True, env=env, cwd=self.root, **kwargs
        )
        if check and result.returncode != 0:
            raise WorldUnavailableError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def _remove(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def _unprivileged_user() -> pwd.struct_passwd:
    """The OS user to run initdb/pg_ctl as when we are root (initdb refuses root)."""
    for name in ("postgres", FALLBACK_OS_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_OS_USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(FALLBACK_OS_USER)
