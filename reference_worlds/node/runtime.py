"""Node and npm on this machine, and the per-version cache of installed npm Worlds.

Each ``<package>@<version>`` is installed once into its own directory under the
cache (``$WORLDS_NPM_CACHE``, else ``~/.cache/worlds/npm``) and reused by every
later run and every child process. A version the bridge's committed lockfile
pins (``npm-lock/``) is installed from that lockfile with ``npm ci``, so CI gets
exactly the dependency tree that was judged; any other exact version with
``npm install``. Installs are serialised with a file lock, because the suite's
child processes and parallel runs may ask for the same package at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from .errors import BridgeError, NodeNotFoundError, NpmInstallError

LOCK_DIR = Path(__file__).with_name("npm-lock")
INSTALL_TIMEOUT = 600.0
EXACT_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?$")
PACKAGE_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")


def find_node() -> str:
    """The ``node`` executable; :class:`NodeNotFoundError` if there is none."""
    node = shutil.which("node")
    if node is None:
        raise NodeNotFoundError("npm Worlds need Node.js: 'node' is not on PATH (install Node.js 20 or later)")
    return node


def find_npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise NodeNotFoundError("npm Worlds need npm to install them: 'npm' is not on PATH")
    return npm


def cache_root() -> Path:
    configured = os.environ.get("WORLDS_NPM_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "worlds" / "npm"


def locked_versions() -> dict[str, str]:
    """The packages and exact versions the committed lockfile pins."""
    manifest = json.loads((LOCK_DIR / "package.json").read_text(encoding="utf-8"))
    return dict(manifest.get("dependencies", {}))


def install(package: str, version: str) -> Path:
    """The directory where ``package@version`` is installed (its ``node_modules`` inside), installing it if needed."""
    find_node()
    locked = locked_versions().get(package) == version
    if locked:
        digest = hashlib.sha256((LOCK_DIR / "package-lock.json").read_bytes()).hexdigest()[:12]
        directory = cache_root() / f"locked-{digest}"
    else:
        directory = cache_root() / f"{package.replace('/', '+')}@{version}"
    done = directory / ".installed"
    if done.exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(directory.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            _install(directory, package, version, locked)
            done.touch()
    return directory


def _install(directory: Path, package: str, version: str, locked: bool) -> None:
    npm = find_npm()
    if locked:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(LOCK_DIR / name, directory / name)
        command = [npm, "ci", "--no-audit", "--no-fund"]
    else:
        manifest = {"name": "worlds-npm-world", "private": True, "dependencies": {package: version}}
        (directory / "package.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        command = [npm, "install", "--no-audit", "--no-fund", "--save-exact"]
    try:
        done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise NpmInstallError(
            f"'{' '.join(command)}' for {package}@{version} took over {INSTALL_TIMEOUT:.0f}s"
        ) from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise NpmInstallError(f"installing {package}@{version} failed ('{' '.join(command)}' in {directory}):\n{tail}")
    installed = installed_version(directory, package)
    if installed != version:
        raise NpmInstallError(f"npm installed {package}@{installed}, not the requested {version}")


def installed_version(directory: Path, package: str) -> str | None:
    try:
        data = json.loads((directory / "node_modules" / package / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(data.get("version"))


_SPEC_PROBE = """
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
const world = createRequire(process.argv[1]).resolve('@workflow/world');
const { SPEC_VERSION_CURRENT } = await import(pathToFileURL(world).href);
console.log(JSON.stringify(SPEC_VERSION_CURRENT));
"""


def spec_version(directory: Path, package: str) -> int:
    """The spec version an installed npm World is judged at: ``SPEC_VERSION_CURRENT`` of its own ``@workflow/world``.

    Node resolves ``@workflow/world`` from the World package, as the World's own
    imports do, so a World on an older interface package (the community Worlds
    on 4.1.0-beta.2, spec 2) is read at that version, whatever else is installed
    beside it. It is the version the World stamps on runs and events it creates
    without one and guards with ``requiresNewerWorld`` (EV-10), and the one
    upstream's runtime starts its runs at (``world.specVersion`` where the World
    sets it, the same constant in the official Worlds; else 2, the baseline).
    """
    known = directory / f".spec-version-{package.replace('/', '+')}"
    if known.exists():  # an installed tree never changes: probed once, then read by every child process
        return int(known.read_text(encoding="utf-8"))
    manifest = directory / "node_modules" / package / "package.json"
    done = subprocess.run(
        [find_node(), "--input-type=module", "-e", _SPEC_PROBE, str(manifest)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        version = json.loads(done.stdout)
    except ValueError:
        version = None
    if done.returncode != 0 or not isinstance(version, int) or isinstance(version, bool):
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BridgeError(
            f"cannot read the spec version of {package} from its @workflow/world: {tail or done.stdout!r}"
        )
    written = known.with_name(f"{known.name}.{os.getpid()}")  # whole or absent for a child reading it
    written.write_text(str(version), encoding="utf-8")
    os.replace(written, known)
    return version
