"""``worlds validate-manifest --installed``: does each manifest entry match what is installed here?

The schema check proves an entry is well-formed; it cannot prove that its
``entryPoint`` exists or that the World behind it is the one the entry describes.
That needs the current environment: the entry point must resolve to a
:class:`~worlds_sdk.backend.WorldBackend` whose id, spec versions, capabilities and
distribution are the entry's. Every mismatch is a :class:`~worlds_sdk.manifest.Problem`
at the field that disagrees, so the output reads like the schema check's.

Entries without ``pypi`` or ``entryPoint`` are upstream's npm Worlds: no Python
environment can install them, so they are skipped with that reason, never failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .discovery import Discovered, DiscoveryError, _same_distribution, discover, resolve_world
from .manifest import Manifest, ManifestEntry, Problem


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledCheck:
    """The outcome: problems found, ids checked, and ids skipped with the reason."""

    problems: tuple[Problem, ...]
    checked: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


def check_installed(manifest: Manifest, *, discovered: Discovered | None = None) -> InstalledCheck:
    """Check every Python entry of ``manifest`` against the Worlds installed in this environment."""
    if discovered is None:
        discovered = discover()
    problems: list[Problem] = []
    checked: list[str] = []
    skipped: list[tuple[str, str]] = []
    for index, entry in enumerate(manifest.worlds):
        reason = not_python(entry)
        if reason is not None:
            skipped.append((entry.id, reason))
            continue
        checked.append(entry.id)
        problems.extend(_entry_problems(entry, ("worlds", index), discovered))
    return InstalledCheck(problems=tuple(problems), checked=tuple(checked), skipped=tuple(skipped))


def not_python(entry: ManifestEntry) -> str | None:
    """Why ``entry`` is not a Python World (``None`` if it is): upstream's npm entries lack our fields."""
    missing = [name for name, value in (("pypi", entry.pypi), ("entryPoint", entry.entry_point)) if value is None]
    if missing:
        return f"an npm World (no {' or '.join(missing)}): nothing to install with pip"
    return None


def _entry_problems(entry: ManifestEntry, at: tuple[str | int, ...], discovered: Discovered) -> list[Problem]:
    try:
        backend = resolve_world(entry.id, manifest=Manifest((entry,)), discovered=discovered)
    except DiscoveryError as exc:
        return [Problem((*at, "entryPoint"), " ".join(str(exc).split()))]
    problems = []
    claims = [
        ("specVersions", "spec versions", entry.spec_versions, backend.spec_versions),
        ("capabilities", "capabilities", entry.capabilities, backend.capabilities),
    ]
    for key, what, listed, declared in claims:
        if not isinstance(listed, (set, frozenset)):
            continue  # the entry claims nothing here (upstream's entries lack our fields)
        if set(listed) != set(declared):
            problems.append(
                Problem(
                    (*at, key),
                    f"the manifest lists {what} [{_names(listed)}], the installed World {backend.id!r} "
                    f"declares [{_names(declared)}]",
                )
            )
    installed = discovered.get(backend.id)
    distribution = backend.distribution or (installed.distribution if installed is not None else None)
    if distribution is not None and entry.pypi is not None and not _same_distribution(distribution, entry.pypi):
        problems.append(
            Problem((*at, "pypi"), f"World {backend.id!r} is installed from {distribution!r}, not {entry.pypi!r}")
        )
    return problems


def _names(values: object) -> str:
    assert isinstance(values, (set, frozenset))
    return ", ".join(sorted(str(value) for value in values))
