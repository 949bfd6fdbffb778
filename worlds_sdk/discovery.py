"""Finding Worlds: installed plugins, the manifest, and ``module:attr`` references.

Installed Worlds come from plugin modules in the ``worlds`` entry-point group,
loaded with pluggy. Entry points are loaded one name at a time so that one
broken plugin (a missing optional dependency, a typo in a hook name) is reported
against its own name instead of hiding every other World; two plugins claiming
one World id, on the other hand, is an error, because either choice would be a
guess. Nothing here runs at import time: ``worlds --help`` must not import a World.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import pluggy

from .backend import WorldBackend
from .hookspecs import PROJECT, WorldsHookspecs
from .manifest import Manifest, ManifestEntry

ENTRY_POINT_GROUP = "worlds"
_MODULE_ATTR = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*")
Resolver = Callable[[str], WorldBackend | None]


class DiscoveryError(Exception):
    """The installed plugins, or what a World reference points to, are inconsistent or broken."""


class WorldNotFoundError(DiscoveryError, LookupError):
    """No World matches the reference; the message names what was tried and the known ids."""


class WorldNotInstalledError(WorldNotFoundError):
    """The World's plugin is installed but the optional extra it needs is not; the message says what to install."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InstalledWorld:
    """A backend and where it came from: the plugin (entry-point) name and its distribution."""

    backend: WorldBackend
    plugin: str
    distribution: str | None
    missing: tuple[str, ...] = ()
    """Modules of the backend's :class:`~worlds_sdk.backend.Extra` that are not installed: then it cannot run."""

    @property
    def install(self) -> str | None:
        """The command that makes this World usable, while its extra is missing."""
        extra = self.backend.extra
        if not self.missing or extra is None:
            return None
        if self.distribution is None:
            return f"install the {extra.name!r} extra of the distribution that provides it"
        return f"pip install '{self.distribution}[{extra.name}]'"

    def usable(self) -> WorldBackend:
        """The backend, or :class:`WorldNotInstalledError` naming the ``pip install`` that would make it usable."""
        if self.install is not None:
            raise WorldNotInstalledError(
                f"World {self.backend.id!r} is not installed: {self.install} (no module named "
                f"{', '.join(repr(m) for m in self.missing)})"
            )
        return self.backend


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokenPlugin:
    """A plugin that could not be loaded or whose registration was unusable, and why."""

    plugin: str
    distribution: str | None
    error: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} ({self.distribution or 'no distribution'}) failed to load: {self.error}"


@dataclass(frozen=True, slots=True)
class Discovered:
    """Everything found in the ``worlds`` entry-point group, Worlds sorted by id."""

    worlds: tuple[InstalledWorld, ...]
    broken: tuple[BrokenPlugin, ...]
    resolvers: tuple[Resolver, ...] = ()
    """The plugins' ``worlds_resolve`` implementations, for ``scheme:…`` references."""

    def get(self, world_id: str) -> InstalledWorld | None:
        return next((world for world in self.worlds if world.backend.id == world_id), None)

    def broken_plugin(self, name: str) -> BrokenPlugin | None:
        return next((plugin for plugin in self.broken if plugin.plugin == name), None)


def plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows the ``worlds`` hooks and nothing else yet."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(WorldsHookspecs)
    return manager


def discover() -> Discovered:
    """Load every plugin in the ``worlds`` entry-point group and collect their backends.

    A plugin that fails to import or to register is recorded in
    :attr:`Discovered.broken`; an entry-point name declared by two
    distributions, or a World id registered twice, raises :class:`DiscoveryError`.
    Each ``worlds_register`` implementation is called on its own rather than
    through the hook caller, so a failure or a bad return value is charged to
    the plugin that caused it.
    """
    manager = plugin_manager()
    broken: list[BrokenPlugin] = []
    declared = _declared_entry_points()
    for name, declared_by in declared.items():
        try:
            manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
            manager.check_pending()
        except Exception as exc:
            plugin = manager.get_plugin(name)
            if plugin is not None:
                manager.unregister(plugin)
            broken.append(BrokenPlugin(plugin=name, distribution=declared_by, error=_describe(exc)))

    worlds: dict[str, InstalledWorld] = {}
    for impl in manager.hook.worlds_register.get_hookimpls():
        distribution = declared.get(impl.plugin_name)
        try:
            backends = _registered(impl.function())
        except Exception as exc:
            broken.append(BrokenPlugin(plugin=impl.plugin_name, distribution=distribution, error=_describe(exc)))
            continue
        for backend in backends:
            world = InstalledWorld(
                backend=backend,
                plugin=impl.plugin_name,
                distribution=backend.distribution or distribution,
                missing=backend.extra.missing() if backend.extra is not None else (),
            )
            if backend.id in worlds:
                raise DiscoveryError(
                    f"World id {backend.id!r} is registered twice: by {_origin(worlds[backend.id])} "
                    f"and by {_origin(world)}; uninstall one of them"
                )
            worlds[backend.id] = world
    resolvers = tuple(cast(Resolver, impl.function) for impl in manager.hook.worlds_resolve.get_hookimpls())
    return Discovered(tuple(sorted(worlds.values(), key=lambda w: w.backend.id)), tuple(broken), resolvers)


def resolve_world(
    reference: str, *, manifest: Manifest | None = None, discovered: Discovered | None = None
) -> WorldBackend:
    """The backend ``reference`` names.

    Tried in order: ``module:attr`` (a :class:`WorldBackend` or a zero-argument
    callable returning one), another ``scheme:…`` reference a plugin resolves
    (``npm:<package>@<version>``), a manifest id (an npm World's entry needs a
    ``version``), an installed World id, an entry-point name, an installed
    distribution name. Raises :class:`WorldNotFoundError` (a
    ``LookupError``) if nothing matches, :class:`DiscoveryError` if the match is
    broken or ambiguous. Pass ``discovered`` to resolve several references
    against one scan of the installed plugins; by default each call scans.
    """
    if _MODULE_ATTR.fullmatch(reference):
        return load_backend(reference)
    entry = manifest.get(reference) if manifest is not None else None
    if entry is not None and entry.entry_point is not None and ":" in entry.entry_point:
        return _matching_entry(load_backend(entry.entry_point), entry)
    if discovered is None:
        discovered = discover()
    if ":" in reference:
        return _from_resolvers(reference, discovered)
    if entry is not None and entry.entry_point is None:
        return _from_resolvers(npm_reference(entry), discovered)
    if entry is not None and entry.entry_point is not None:
        return _matching_entry(_from_plugin(entry.entry_point, discovered, entry=entry), entry)
    world = discovered.get(reference)
    if world is not None:
        return world.usable()
    if any(w.plugin == reference for w in discovered.worlds) or discovered.broken_plugin(reference):
        return _from_plugin(reference, discovered)
    by_distribution = [w for w in discovered.worlds if _same_distribution(w.distribution, reference)]
    if len(by_distribution) == 1:
        return by_distribution[0].usable()
    if by_distribution:
        ids = ", ".join(w.backend.id for w in by_distribution)
        raise DiscoveryError(f"distribution {reference!r} provides several Worlds ({ids}); name one by id")
    known = sorted({w.backend.id for w in discovered.worlds} | set(manifest.ids if manifest is not None else ()))
    message = (
        f"no World {reference!r}: not a manifest id, installed World id, entry-point name or distribution name"
        f" (known Worlds: {', '.join(known) or 'none'}"
    )
    if discovered.broken:
        message += f"; plugins that failed to load: {', '.join(p.plugin for p in discovered.broken)}"
    raise WorldNotFoundError(message + ")")


def npm_reference(entry: ManifestEntry) -> str:
    """``npm:<package>@<version>`` for an npm World's manifest entry; its ``version`` pins what runs."""
    if entry.version is None:
        raise WorldNotFoundError(
            f"World {entry.id!r} is an npm World and its manifest entry has no 'version'; "
            f"name an exact version: npm:{entry.package}@<version>"
        )
    return f"npm:{entry.package}@{entry.version}"


def _from_resolvers(reference: str, discovered: Discovered) -> WorldBackend:
    for resolver in discovered.resolvers:
        backend = resolver(reference)
        if backend is not None:
            return backend
    scheme = reference.partition(":")[0]
    raise WorldNotFoundError(
        f"no World {reference!r}: not a module:attr reference, and no installed plugin resolves {scheme!r} references"
    )


def load_backend(spec: str) -> WorldBackend:
    """The backend at ``module:attr``: a :class:`WorldBackend`, or a zero-argument callable returning one."""
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise WorldNotFoundError(f"{spec!r} is not a module:attr reference")
    try:
        target: object = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise WorldNotFoundError(f"no World {spec!r}: no module named {exc.name!r}") from None
        raise DiscoveryError(f"importing {module_name!r} for {spec!r} failed: {_describe(exc)}") from exc
    except Exception as exc:
        raise DiscoveryError(f"importing {module_name!r} for {spec!r} failed: {_describe(exc)}") from exc
    for part in attr_path.split("."):
        if not hasattr(target, part):
            raise WorldNotFoundError(f"no World {spec!r}: {module_name!r} has no attribute {attr_path!r}")
        target = getattr(target, part)
    if isinstance(target, WorldBackend):
        return _usable(target)
    expected = "a WorldBackend or a zero-argument callable returning one"
    if not callable(target):
        raise DiscoveryError(f"{spec!r} is {_kind(target)}, not {expected}")
    if not _callable_without_arguments(target):
        raise DiscoveryError(f"{spec!r} is {_kind(target)} that needs arguments, not {expected}")
    try:
        backend = target()
    except Exception as exc:
        raise DiscoveryError(f"calling {spec!r} failed: {_describe(exc)}") from exc
    if not isinstance(backend, WorldBackend):
        raise DiscoveryError(f"{spec!r} returned {_kind(backend)}, not a WorldBackend")
    return _usable(backend)


def _usable(backend: WorldBackend) -> WorldBackend:
    """A backend named by ``module:attr`` is checked for its extra as a discovered one is."""
    missing = backend.extra.missing() if backend.extra is not None else ()
    return InstalledWorld(backend=backend, plugin="", distribution=backend.distribution, missing=missing).usable()


def _declared_entry_points() -> dict[str, str]:
    """Entry-point names in the ``worlds`` group and the distribution declaring each, read as pluggy reads them.

    The same distribution seen twice on ``sys.path`` is one declaration; two
    distributions declaring one name would let pluggy silently load whichever
    comes first, so that is an error.
    """
    declared: dict[str, tuple[str, str]] = {}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            found = (dist.metadata["Name"], ep.value)
            first = declared.setdefault(ep.name, found)
            if not _same_distribution(first[0], found[0]) or first[1] != found[1]:
                raise DiscoveryError(
                    f"entry point {ep.name!r} in group {ENTRY_POINT_GROUP!r} is declared twice: "
                    f"by {first[0]} ({first[1]}) and by {found[0]} ({found[1]}); uninstall one of them"
                )
    return {name: dist_name for name, (dist_name, _) in declared.items()}


def _registered(returned: object) -> Sequence[WorldBackend]:
    if not isinstance(returned, (list, tuple)) or not all(isinstance(b, WorldBackend) for b in returned):
        raise DiscoveryError(f"worlds_register returned {_kind(returned)}, not a list of WorldBackend")
    return returned


def _from_plugin(name: str, discovered: Discovered, *, entry: ManifestEntry | None = None) -> WorldBackend:
    """The one World of plugin ``name`` (or, if it has several, the one with the manifest entry's id)."""
    broken = discovered.broken_plugin(name)
    if broken is not None:
        raise DiscoveryError(str(broken))
    worlds = [w for w in discovered.worlds if w.plugin == name]
    if entry is not None:
        if not worlds:
            raise WorldNotFoundError(
                f"World {entry.id!r} is in the manifest but not installed: no {name!r} plugin "
                f"in the {ENTRY_POINT_GROUP!r} entry-point group (pip install {entry.package!r})"
            )
        worlds = [w for w in worlds if w.backend.id == entry.id] or worlds
    if len(worlds) > 1:
        ids = ", ".join(w.backend.id for w in worlds)
        raise DiscoveryError(f"plugin {name!r} provides several Worlds ({ids}); name one by id")
    return worlds[0].usable()


def _matching_entry(backend: WorldBackend, entry: ManifestEntry) -> WorldBackend:
    if backend.id != entry.id:
        raise DiscoveryError(
            f"manifest entry {entry.id!r} points at {entry.entry_point!r}, which is World {backend.id!r}"
        )
    return backend


def _same_distribution(a: str | None, b: str) -> bool:
    """Compare distribution names as PEP 503 does (case, ``-``, ``_`` and ``.`` are not significant)."""
    return a is not None and _normalize(a) == _normalize(b)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _callable_without_arguments(target: Callable[..., object]) -> bool:
    try:
        inspect.signature(target).bind()
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (some builtins): let the call decide
        return True
    return True


def _origin(world: InstalledWorld) -> str:
    return f"plugin {world.plugin!r} ({world.distribution or 'no distribution'})"


def _kind(value: object) -> str:
    return "None" if value is None else f"a {type(value).__name__}"


def _describe(exc: BaseException) -> str:
    """An exception as one line: errors end up in ``worlds: error: …`` lines and in tables."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
