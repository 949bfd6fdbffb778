"""The Worlds manifest: which Worlds exist, how to install, start and find them.

The file keeps upstream's ``worlds-manifest.json`` entry format field for field
(camelCase, so an entry translates to and from upstream's registry) and adds what
a Python World needs: the PyPI distribution, the entry point, the spec versions and
the capabilities it claims. Those additions are optional, so upstream's own
manifest reads unchanged: an entry with ``pypi`` and ``entryPoint`` is a Python
World, an entry with neither is an npm World (``package`` is the npm package).
Fields this version does not know are kept and written back, because upstream's
format grows and a reader that drops what it does not understand loses data.
Validation collects *every* problem with its JSON path instead of stopping at the
first, because a manifest is edited by hand and checked in CI, where one round
trip per typo is the expensive part.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jsonschema

from .capabilities import Capability
from .validation import load_schema

WorldType = Literal["official", "community"]
Runtime = Literal["python", "node"]
Location = tuple[str | int, ...]

PYTHON_FIELDS = ("pypi", "entryPoint", "specVersions", "capabilities")
"""The keys our manifest adds to upstream's entry format; :func:`to_upstream` drops them."""

_PYTHON_WORLD_NEEDS = "a Python World has pypi, entryPoint, specVersions and capabilities"
_KNOWN_ENTRY = (
    "id",
    "type",
    "package",
    "name",
    "description",
    "docs",
    "repository",
    "example",
    "env",
    "services",
    "setup",
    "features",
    "requiresCredentials",
    "credentialsNote",
    "requiresDeployment",
    "version",
    *PYTHON_FIELDS,
)
_KNOWN_SERVICE = ("name", "image", "args", "ports", "env", "healthCheck")
_KNOWN_HEALTH_CHECK = ("cmd", "interval", "timeout", "retries")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a manifest, at a JSON location (``("worlds", 0, "id")``)."""

    location: Location
    message: str

    @property
    def path(self) -> str:
        """The location as a JSONPath, e.g. ``$.worlds[0].services[1].healthCheck.cmd``."""
        parts = ["$"]
        for key in self.location:
            if isinstance(key, int):
                parts.append(f"[{key}]")
            elif re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", key):
                parts.append(f".{key}")
            else:
                parts.append(f"[{json.dumps(key)}]")
        return "".join(parts)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ManifestError(ValueError):
    """The manifest is invalid; :attr:`problems` lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem], *, source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        where = f"{source}: " if source else ""
        super().__init__(f"{where}invalid manifest, {count}: " + "; ".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthCheck:
    """How CI knows a service is ready (passed to Docker's ``--health-*`` options)."""

    cmd: str
    interval: str | None = None
    timeout: str | None = None
    retries: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept verbatim and written back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """A container a World needs at test time, such as a database server."""

    name: str
    image: str
    ports: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    health_check: HealthCheck | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept verbatim and written back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestEntry:
    """One World in the manifest; field names are upstream's, in snake_case.

    ``pypi`` and ``entry_point`` are set together, for a Python World; an entry
    without them is an npm World. For an npm World, ``spec_versions`` and
    ``capabilities`` are empty unless the entry states them (the Node bridge
    keeps its own overlay of what each package's documentation claims).
    """

    id: str
    type: WorldType
    package: str
    name: str
    description: str
    pypi: str | None = None
    entry_point: str | None = None
    spec_versions: frozenset[int] = frozenset()
    capabilities: frozenset[Capability] = frozenset()
    docs: str | None = None
    repository: str | None = None
    example: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    services: tuple[Service, ...] = ()
    setup: str | None = None
    features: tuple[str, ...] = ()
    requires_credentials: bool = False
    credentials_note: str | None = None
    requires_deployment: bool = False
    version: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Fields this version does not know, kept verbatim and written back."""

    @property
    def runtime(self) -> Runtime:
        """``python`` for an entry with ``pypi``/``entryPoint``, else ``node`` (``package`` is on npm)."""
        return "python" if self.entry_point is not None else "node"


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated manifest: its entries in file order, ids unique."""

    worlds: tuple[ManifestEntry, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Top-level fields other than ``worlds`` (``$schema``, unknown ones), kept verbatim."""

    def get(self, world_id: str) -> ManifestEntry | None:
        return next((entry for entry in self.worlds if entry.id == world_id), None)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(entry.id for entry in self.worlds)


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file.

    Raises :class:`ManifestError` for invalid JSON or content, and ``OSError`` if
    the file cannot be read (not a problem *in* the manifest).
    """
    raw = Path(path).read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        problem = Problem((), f"not UTF-8: byte {raw[exc.start]:#04x} at offset {exc.start}")
        raise ManifestError([problem], source=str(path)) from None
    except json.JSONDecodeError as exc:
        problem = Problem((), f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        raise ManifestError([problem], source=str(path)) from None
    try:
        return parse_manifest(data)
    except ManifestError as exc:
        raise ManifestError(exc.problems, source=str(path)) from None


def parse_manifest(data: object) -> Manifest:
    """A :class:`Manifest` from decoded JSON; raises :class:`ManifestError` listing every problem."""
    problems = manifest_problems(data)
    if problems:
        raise ManifestError(problems)
    assert isinstance(data, dict)
    extra = {key: value for key, value in data.items() if key != "worlds"}
    return Manifest(tuple(_entry(raw) for raw in data["worlds"]), extra)


def manifest_problems(data: object) -> list[Problem]:
    """Every problem in decoded manifest JSON, in file order: schema violations and checks a schema cannot express."""
    found = list(dict.fromkeys(_schema_problems(data, _validator()))) + _semantic_problems(data)
    return sorted(found, key=lambda problem: _sort_key(problem.location))


def to_dict(entry: ManifestEntry) -> dict[str, Any]:
    """The entry in manifest form (camelCase); unset optional fields are left out, as upstream does."""
    data: dict[str, Any] = {
        "id": entry.id,
        "type": entry.type,
        "package": entry.package,
        "name": entry.name,
        "description": entry.description,
    }
    optional: dict[str, Any] = {
        "docs": entry.docs,
        "repository": entry.repository,
        "example": entry.example,
        "setup": entry.setup,
        "credentialsNote": entry.credentials_note,
        "version": entry.version,
    }
    data.update({key: value for key, value in optional.items() if value is not None})
    data["env"] = dict(entry.env)
    data["services"] = [_service_dict(service) for service in entry.services]
    data["features"] = list(entry.features)
    if entry.requires_credentials:
        data["requiresCredentials"] = True
    if entry.requires_deployment:
        data["requiresDeployment"] = True
    if entry.pypi is not None:
        data["pypi"] = entry.pypi
    if entry.entry_point is not None:
        data["entryPoint"] = entry.entry_point
    if entry.spec_versions or entry.runtime == "python":
        data["specVersions"] = sorted(entry.spec_versions)
    if entry.capabilities or entry.runtime == "python":
        data["capabilities"] = sorted(entry.capabilities)
    data.update(entry.extra)
    return data


def manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    """The whole manifest in file form, ready for ``json.dumps``; unknown top-level fields kept."""
    return {**manifest.extra, "worlds": [to_dict(entry) for entry in manifest.worlds]}


def to_upstream(entry: ManifestEntry) -> dict[str, Any]:
    """The entry as upstream's ``worlds-manifest.json`` has it: our Python fields dropped."""
    return {key: value for key, value in to_dict(entry).items() if key not in PYTHON_FIELDS}


def from_upstream(
    data: Mapping[str, Any],
    *,
    pypi: str | None = None,
    entry_point: str | None = None,
    spec_versions: Sequence[int] | None = None,
    capabilities: Sequence[str] | None = None,
) -> ManifestEntry:
    """An entry from an upstream manifest entry plus the Python fields upstream lacks.

    Keyword arguments override keys already in ``data``, so an entry of our own
    manifest passes through unchanged. Problems are reported as for a one-entry
    manifest (paths ``$.worlds[0]…``).
    """
    additions = {
        "pypi": pypi,
        "entryPoint": entry_point,
        "specVersions": None if spec_versions is None else list(spec_versions),
        "capabilities": None if capabilities is None else list(capabilities),
    }
    merged = {**data, **{key: value for key, value in additions.items() if value is not None}}
    return parse_manifest({"worlds": [merged]}).worlds[0]


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = load_schema("manifest")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_problems(data: object, validator: jsonschema.protocols.Validator) -> Iterator[Problem]:
    """Schema errors, each pointed at the field concerned.

    jsonschema reports a missing or unexpected key at the enclosing object; a
    person fixing the file wants the key itself named, one problem per key.
    (The caller drops repeats: ``required`` can fail once per ``if``/``then`` too.)
    """
    for error in validator.iter_errors(data):
        at: Location = tuple(error.absolute_path)
        instance = error.instance
        if error.validator == "required" and isinstance(instance, dict):
            for name in error.validator_value:
                if name not in instance:
                    yield Problem((*at, name), "required field is missing")
        elif error.validator == "dependentRequired" and isinstance(instance, dict):
            missing = {
                name for present, needed in error.validator_value.items() if present in instance for name in needed
            }
            for name in sorted(missing - instance.keys()):
                yield Problem((*at, name), f"required field is missing ({_PYTHON_WORLD_NEEDS})")
        else:
            yield Problem(at, error.message)


def _semantic_problems(data: object) -> list[Problem]:
    problems: list[Problem] = []
    worlds = data.get("worlds") if isinstance(data, dict) else None
    if not isinstance(worlds, list):
        return problems
    first_index: dict[str, int] = {}
    for index, entry in enumerate(worlds):
        if not isinstance(entry, dict):
            continue
        at: Location = ("worlds", index)
        world_id = entry.get("id")
        if isinstance(world_id, str):
            if world_id in first_index:
                problems.append(
                    Problem((*at, "id"), f"duplicate id {world_id!r} (first used at $.worlds[{first_index[world_id]}])")
                )
            else:
                first_index[world_id] = index
        problems.extend(_capability_problems(entry.get("capabilities"), (*at, "capabilities")))
        services = entry.get("services")
        if isinstance(services, list):
            problems.extend(_service_problems(services, (*at, "services")))
    return problems


def _capability_problems(names: object, at: Location) -> Iterator[Problem]:
    """Unknown capability names; checked here so the vocabulary lives only in :class:`Capability`."""
    if not isinstance(names, list):
        return
    known = sorted(c.value for c in Capability)
    for index, name in enumerate(names):
        if isinstance(name, str) and name not in known:
            yield Problem((*at, index), f"unknown capability {name!r}; known: {', '.join(known)}")


def _service_problems(services: list[Any], at: Location) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, service in enumerate(services):
        if not isinstance(service, dict):
            continue
        name = service.get("name")
        if isinstance(name, str):
            if name in seen:
                yield Problem((*at, index, "name"), f"duplicate service name {name!r}")
            seen.add(name)
        for port_index, port in enumerate(service.get("ports") or []):
            if isinstance(port, str) and not all(0 < int(n) < 65536 for n in re.findall(r"[0-9]+", port)):
                yield Problem((*at, index, "ports", port_index), f"port number out of range in {port!r}")
        check = service.get("healthCheck")
        if isinstance(check, dict):
            for key in ("interval", "timeout"):
                value = check.get(key)
                if isinstance(value, str) and _is_duration(value) and _seconds(value) == 0:
                    yield Problem((*at, index, "healthCheck", key), f"{key} must be longer than zero, got {value!r}")


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _is_duration(text: str) -> bool:
    return re.fullmatch(f"(?:{_DURATION_PART.pattern})+", text) is not None


def _seconds(duration: str) -> float:
    return sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_PART.findall(duration))


def _sort_key(location: Location) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, key) if isinstance(key, int) else (1, key) for key in location)


def _entry(raw: Mapping[str, Any]) -> ManifestEntry:
    return ManifestEntry(
        id=raw["id"],
        type=raw["type"],
        package=raw["package"],
        name=raw["name"],
        description=raw["description"],
        pypi=raw.get("pypi"),
        entry_point=raw.get("entryPoint"),
        spec_versions=frozenset(raw.get("specVersions", [])),
        capabilities=frozenset(Capability(name) for name in raw.get("capabilities", [])),
        docs=raw.get("docs"),
        repository=raw.get("repository"),
        example=raw.get("example"),
        env=dict(raw.get("env", {})),
        services=tuple(_service(s) for s in raw.get("services", [])),
        setup=raw.get("setup"),
        features=tuple(raw.get("features", [])),
        requires_credentials=raw.get("requiresCredentials", False),
        credentials_note=raw.get("credentialsNote"),
        requires_deployment=raw.get("requiresDeployment", False),
        version=raw.get("version"),
        extra=_unknown(raw, _KNOWN_ENTRY),
    )


def _service(raw: Mapping[str, Any]) -> Service:
    check = raw.get("healthCheck")
    return Service(
        name=raw["name"],
        image=raw["image"],
        ports=tuple(raw.get("ports", [])),
        env=dict(raw.get("env", {})),
        args=tuple(raw.get("args", [])),
        health_check=_health_check(check) if check is not None else None,
        extra=_unknown(raw, _KNOWN_SERVICE),
    )


def _health_check(raw: Mapping[str, Any]) -> HealthCheck:
    known = {key: raw[key] for key in _KNOWN_HEALTH_CHECK if key in raw}
    return HealthCheck(**known, extra=_unknown(raw, _KNOWN_HEALTH_CHECK))


def _unknown(raw: Mapping[str, Any], known: Sequence[str]) -> dict[str, Any]:
    return {key: value for key, value in raw.items() if key not in known}


def _service_dict(service: Service) -> dict[str, Any]:
    data: dict[str, Any] = {"name": service.name, "image": service.image}
    if service.args:
        data["args"] = list(service.args)
    data["ports"] = list(service.ports)
    if service.env:
        data["env"] = dict(service.env)
    if service.health_check is not None:
        check = service.health_check
        fields = {"cmd": check.cmd, "interval": check.interval, "timeout": check.timeout, "retries": check.retries}
        data["healthCheck"] = {key: value for key, value in fields.items() if value is not None} | dict(check.extra)
    data.update(service.extra)
    return data
