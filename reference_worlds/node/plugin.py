"""Resolves ``npm:<package>@<exact version>`` references to backends (the ``worlds_resolve`` hook).

What a backend claims comes from two files shipped here: upstream's manifest
(a verbatim copy: ``env``, ``services``, ``setup`` and the credentials and
deployment notes of each package) and our overlay (``overlay.json``:
capabilities, the factory export), because upstream's manifest does not state
what a World promises. The spec version is not claimed by anyone: it is read
from the installed package (:func:`.runtime.spec_version`), so the package is
installed (once, into the cache) when its reference is resolved.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from worlds_sdk import WorldBackend, hookimpl
from worlds_sdk.capabilities import Observation, parse_capabilities
from worlds_sdk.discovery import DiscoveryError
from worlds_sdk.manifest import Manifest, load_manifest

from .runtime import EXACT_VERSION, PACKAGE_NAME, install, spec_version
from .sandbox import NpmWorldSpec, npm_sandbox
from .world import NodeWorld

SCHEME = "npm:"
UNOBSERVABLE = {
    Observation.MESSAGE_DEPLOYMENT_ID: (
        "upstream's queue handler API calls the handler with (message, {attempt, queueName, messageId}): "
        "no deployment id reaches the bridge, so MessageMeta.deployment_id cannot be filled"
    ),
}
"""What upstream's TypeScript interface does not carry to a queue handler, whichever npm World it is;
an overlay entry adds what one package cannot show (``"unobservable": {observation: reason}``)."""
HERE = Path(__file__).parent


@cache
def upstream_manifest() -> Manifest:
    return load_manifest(HERE / "upstream-worlds-manifest.json")


@cache
def overlay() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HERE / "overlay.json").read_text(encoding="utf-8"))
    return {key: value for key, value in data.items() if not key.startswith("$")}


def parse_reference(reference: str) -> tuple[str, str]:
    """``npm:@scope/name@1.2.3`` -> ``("@scope/name", "1.2.3")``; an exact version is required."""
    body = reference[len(SCHEME) :]
    name, at, version = body.rpartition("@")
    if not at or not name:
        raise DiscoveryError(f"{reference!r}: name an exact version, e.g. npm:{body}@1.2.3")
    if not PACKAGE_NAME.fullmatch(name):
        raise DiscoveryError(f"{reference!r}: {name!r} is not an npm package name")
    if not EXACT_VERSION.fullmatch(version):
        raise DiscoveryError(
            f"{reference!r}: {version!r} is not an exact version (ranges and tags are not reproducible)"
        )
    return name, version


def npm_backend(reference: str) -> WorldBackend:
    package, version = parse_reference(reference)
    entry = next((e for e in upstream_manifest().worlds if e.package == package), None)
    if entry is not None and (entry.requires_credentials or entry.requires_deployment):
        why = entry.credentials_note or "it only runs deployed (requiresDeployment)"
        raise DiscoveryError(f"{reference!r} cannot be tested here: {why}")
    claims = overlay().get(package, {})
    capabilities = parse_capabilities(claims.get("capabilities", []), where=f"overlay.json {package}")
    assumed = ", ".join(sorted(capabilities)) or "none"
    version_of_spec = spec_version(install(package, version), package)
    world = NpmWorldSpec(package=package, version=version, entry=entry, overlay=claims, spec_version=version_of_spec)
    return WorldBackend(
        id=entry.id if entry is not None else package,
        factory=NodeWorld,
        sandbox=npm_sandbox(world),
        spec_versions=frozenset({version_of_spec}),
        capabilities=capabilities,
        unobservable={**UNOBSERVABLE, **{Observation(k): v for k, v in claims.get("unobservable", {}).items()}},
        description=(
            f"npm World {package}@{version} through the Node bridge, spec {version_of_spec} (its @workflow/world's "
            "SPEC_VERSION_CURRENT); capabilities assumed from "
            f"reference_worlds/node/overlay.json: {assumed}"
        ),
        distribution=f"{SCHEME}{package}@{version}",
    )


@hookimpl
def worlds_resolve(reference: str) -> WorldBackend | None:
    return npm_backend(reference) if reference.startswith(SCHEME) else None
