"""``worlds ci matrix``: a GitHub Actions matrix of the manifest's Worlds that CI can test.

Upstream's CI reads the same manifest fields to start each World's services and
run its e2e suite; this is the Python counterpart. One matrix row per World:
its pip requirement, its env, its services (image, ports, env, health check,
plus ``start``: the ``docker run`` command that starts it with Docker's health
options, so a workflow can wait for ``healthy``) and its setup command. A World
CI cannot test -- it needs secrets, a deployment, or it is an npm World -- is left
out, with the reason, so a gate never silently shrinks.

See ``docs/ci.md`` for a workflow that uses it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from .installed import not_python
from .manifest import HealthCheck, Manifest, ManifestEntry, Service, _service_dict


@dataclass(frozen=True, slots=True, kw_only=True)
class Matrix:
    """The rows CI runs (``include``, GitHub's matrix form) and the Worlds left out, with the reason."""

    include: tuple[dict[str, Any], ...]
    excluded: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, Any]:
        """``{"include": [...]}``: only ``include``, since any other key would become a matrix dimension."""
        return {"include": list(self.include)}


def ci_matrix(manifest: Manifest) -> Matrix:
    include: list[dict[str, Any]] = []
    excluded: list[tuple[str, str]] = []
    for entry in manifest.worlds:
        reason = untestable(entry)
        if reason is None:
            include.append(row(entry))
        else:
            excluded.append((entry.id, reason))
    return Matrix(include=tuple(include), excluded=tuple(excluded))


def untestable(entry: ManifestEntry) -> str | None:
    """Why CI cannot test ``entry`` on a fresh runner, or ``None`` if it can."""
    if entry.requires_credentials:
        return f"needs credentials CI does not have ({entry.credentials_note or 'see the entry'})"
    if entry.requires_deployment:
        return "runs only when deployed, not in a local test run"
    return not_python(entry)


def row(entry: ManifestEntry) -> dict[str, Any]:
    """One matrix row: what a job needs to install the World, start its services and test it."""
    return {
        "world": entry.id,
        "name": entry.name,
        "package": entry.package,
        "env": dict(entry.env),
        "services": [_service(service) for service in entry.services],
        "setup": entry.setup or "",
    }


def _service(service: Service) -> dict[str, Any]:
    """The service as the manifest has it, plus ``start``: the shell command that starts it."""
    return {**_service_dict(service), "start": shlex.join(docker_run(service))}


def docker_run(service: Service) -> list[str]:
    """The ``docker run`` argv that starts ``service`` detached, named after it, with its health check."""
    argv = ["docker", "run", "--detach", "--name", service.name]
    for port in service.ports:
        argv += ["--publish", port]
    for key, value in service.env.items():
        argv += ["--env", f"{key}={value}"]
    argv += health_options(service.health_check)
    return [*argv, service.image, *service.args]


def health_options(check: HealthCheck | None) -> list[str]:
    """Docker's ``--health-*`` options for a manifest health check (what GitHub service ``options`` take too)."""
    if check is None:
        return []
    options = ["--health-cmd", check.cmd]
    if check.interval is not None:
        options += ["--health-interval", check.interval]
    if check.timeout is not None:
        options += ["--health-timeout", check.timeout]
    if check.retries is not None:
        options += ["--health-retries", str(check.retries)]
    return options
