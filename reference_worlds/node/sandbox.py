"""Provisioning an npm World from its manifest entry: install, services, env, setup.

The session-wide part (:func:`npm_sandbox`) installs the package into the
cache and starts the entry's services; each instance then gets a fresh
directory (the World's working directory), a fresh database on every service,
the entry's ``env`` with service URLs pointed at those databases, and the
overlay's per-instance variables. The entry's ``setup`` command (migrations)
runs against the postgres service's template database once, and every
instance's database is a copy of it; for a World without one it runs per instance.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from worlds_sdk.backend import Sandbox, WorldConfig
from worlds_sdk.manifest import ManifestEntry

from .errors import BridgeError
from .runtime import find_node, install
from .services import RunningService, ServiceUnavailable, postgres_service, redis_service

SETUP_TIMEOUT = 180.0


@dataclass(frozen=True, slots=True, kw_only=True)
class NpmWorldSpec:
    """One npm World at one version, with what the manifest and our overlay say about it."""

    package: str
    version: str
    entry: ManifestEntry | None
    overlay: Mapping[str, Any]
    spec_version: int

    @property
    def env(self) -> dict[str, str]:
        return dict(self.entry.env) if self.entry is not None else {}


class NpmSandbox:
    """Instances of one installed npm World (see the module docstring)."""

    def __init__(self, spec: NpmWorldSpec, install_dir: Path, services: list[RunningService]) -> None:
        self.spec = spec
        self.install_dir = install_dir
        self.services = services

    @contextmanager
    def instance(self) -> Iterator[WorldConfig]:
        with ExitStack() as stack:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="worlds-npm-")))
            urls = {scheme: stack.enter_context(s.database()) for s in self.services for scheme in s.schemes}
            env = instance_env(self.spec, urls, directory)
            if not any("postgres" in s.schemes for s in self.services):  # else it ran once, on the template
                run_setup(self.spec, self.install_dir, env, directory)
            yield {
                "package": self.spec.package,
                "version": self.spec.version,
                "install_dir": str(self.install_dir),
                "cwd": str(directory),
                "factory": self.spec.overlay.get("factory"),
                "spec_version": self.spec.spec_version,
                "env": env,
            }


def instance_env(spec: NpmWorldSpec, urls: Mapping[str, str], directory: Path) -> dict[str, str]:
    """The entry's env, each service URL replaced by this instance's database, plus the overlay's variables.

    An overlay value may name the instance's directory (``{instance}``) and a service's URL by its
    scheme (``{redis}``, ``{postgres}``): for a package that reads another variable than its
    manifest entry sets.
    """
    env = {key: urls.get(urlsplit(value).scheme, value) if "://" in value else value for key, value in spec.env.items()}
    for key, template in spec.overlay.get("instanceEnv", {}).items():
        value = template.replace("{instance}", str(directory))
        for scheme, url in urls.items():
            value = value.replace(f"{{{scheme}}}", url)
        env[key] = value
    return env


def setup_command(spec: NpmWorldSpec, install_dir: Path) -> list[str] | None:
    """The entry's ``setup`` for an installed package instead of upstream's monorepo checkout.

    ``./packages/<dir>/bin/x.js`` is the package's own ``bin/x.js``; ``pnpm exec
    <bin>`` is ``node_modules/.bin/<bin>``.
    """
    setup = spec.entry.setup if spec.entry is not None else None
    if not setup:
        return None
    words = shlex.split(setup)
    package_dir = install_dir / "node_modules" / spec.package
    if words[0].startswith("./packages/"):
        inside = Path(*Path(words[0]).parts[2:])  # drop ./packages/<dir> (Path drops the ".")
        return [find_node(), str(package_dir / inside), *words[1:]]
    if words[:2] == ["pnpm", "exec"] or words[:1] == ["npx"]:
        rest = words[2:] if words[0] == "pnpm" else words[1:]
        return [str(install_dir / "node_modules" / ".bin" / rest[0]), *rest[1:]]
    raise BridgeError(f"cannot translate the setup command {setup!r} of {spec.package} for an installed package")


def run_setup(spec: NpmWorldSpec, install_dir: Path, env: Mapping[str, str], cwd: Path) -> None:
    command = setup_command(spec, install_dir)
    if command is None:
        return
    try:
        done = subprocess.run(
            command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=SETUP_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise BridgeError(f"setup of {spec.package} ({shlex.join(command)}) took over {SETUP_TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise BridgeError(f"setup of {spec.package} failed ({shlex.join(command)}):\n{output}")


def npm_sandbox(spec: NpmWorldSpec) -> Callable[[WorldConfig], AbstractContextManager[Sandbox]]:
    """A ``WorldBackend.sandbox``: install once, start the services, then make instances."""

    @contextmanager
    def sandbox(settings: WorldConfig) -> Iterator[Sandbox]:
        install_dir = install(spec.package, spec.version)
        with ExitStack() as stack:
            services: list[RunningService] = []
            for service in spec.entry.services if spec.entry is not None else ():
                if service.name == "redis":
                    services.append(stack.enter_context(redis_service()))
                    continue
                if service.name != "postgres":
                    raise ServiceUnavailable(
                        f"{spec.package} needs service {service.name!r} (image {service.image}), "
                        "which cannot be started on this machine"
                    )

                def prepare(url: str) -> None:
                    with tempfile.TemporaryDirectory(prefix="worlds-npm-setup-") as cwd:
                        run_setup(
                            spec,
                            install_dir,
                            instance_env(spec, {"postgres": url, "postgresql": url}, Path(cwd)),
                            Path(cwd),
                        )

                services.append(stack.enter_context(postgres_service(prepare)))
            yield NpmSandbox(spec, install_dir, services)

    return sandbox
