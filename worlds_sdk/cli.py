"""The ``worlds`` command: list, validate and test Worlds.

Subcommands live in one registry (:data:`COMMANDS`), filled by the
:func:`command` decorator: a new subcommand is a function taking the parsed
arguments and returning an exit code, plus an optional function adding its
arguments. Handlers import what they need (pytest, a World's plugin) when they
run, so ``worlds --help`` and ``worlds --version`` never import a World.

Errors a user can cause (a bad argument, an unknown World, an invalid or
missing manifest) end as one line ``worlds: error: …`` on stderr and a non-zero
exit code, never as a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

from . import SPEC_VERSION, __version__
from .discovery import (
    Discovered,
    DiscoveryError,
    InstalledWorld,
    WorldNotFoundError,
    discover,
    npm_reference,
    resolve_world,
)
from .errors import WorkflowWorldError
from .manifest import Manifest, ManifestEntry, ManifestError, load_manifest

DEFAULT_MANIFEST = "worlds-manifest.json"
USAGE_ERROR = 2
"""Exit code for bad input: an unknown option or World, an unreadable or invalid manifest."""


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: its help line, how it adds its arguments, and what it runs."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(
    name: str, help: str, *, arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register the decorated function as ``worlds <name>``; it returns the exit code."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(name, help, arguments, run)
        return run

    return register


class CommandError(Exception):
    """Bad input: reported as one ``worlds: error:`` line, exit code :data:`USAGE_ERROR`."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (argparse prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message} (see '{self.prog} --help')")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``worlds`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except (CommandError, DiscoveryError, ManifestError, OSError) as exc:
        print(f"worlds: error: {_message(exc)}", file=sys.stderr)
        return USAGE_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="worlds", description="Find, validate and test Worlds (durable workflow backends).")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__} (World spec version {SPEC_VERSION})"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for cmd in COMMANDS.values():
        sub = subparsers.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.arguments(sub)
        sub.set_defaults(run=cmd.run)
    return parser


def _manifest_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--manifest",
        metavar="PATH",
        type=Path,
        help=f"the manifest to read (default: ./{DEFAULT_MANIFEST} if it exists)",
    )


def _manifest(args: argparse.Namespace) -> Manifest | None:
    """The manifest named by ``--manifest``, else ``./worlds-manifest.json`` if present, else none."""
    path: Path | None = args.manifest
    if path is None:
        path = Path(DEFAULT_MANIFEST)
        if not path.is_file():
            return None
    return load_manifest(path)


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _manifest_option(parser)


@command("list", "List the Worlds in the manifest and the installed World plugins.", arguments=_list_arguments)
def list_worlds(args: argparse.Namespace) -> int:
    manifest = _manifest(args) or Manifest()
    discovered = discover()
    rows, warnings = _rows(manifest, discovered)
    if args.json:
        broken = [{"plugin": p.plugin, "distribution": p.distribution, "error": p.error} for p in discovered.broken]
        json.dump({"worlds": rows, "brokenPlugins": broken, "warnings": warnings}, sys.stdout, indent=2)
        print()
    else:
        _print_table(rows, sys.stdout)
        for warning in warnings:
            print(f"worlds: warning: {warning}", file=sys.stderr)
    return 0


def _rows(manifest: Manifest, discovered: Discovered) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per World id: manifest entries in file order, then installed Worlds the manifest lacks."""
    rows: list[dict[str, Any]] = []
    warnings = [str(plugin) for plugin in discovered.broken]
    for entry in manifest.worlds:
        if entry.runtime == "node":  # installed into the bridge's cache on first use
            rows.append(_row(entry.id, "pinned" if entry.version else "unpinned", entry, None))
            continue
        installed = discovered.get(entry.id)
        status = "installed"
        try:
            resolve_world(entry.id, manifest=manifest, discovered=discovered)
        except WorldNotFoundError:
            status = "not installed"
        except DiscoveryError as exc:
            status = "broken"
            warnings.append(str(exc))
        rows.append(_row(entry.id, status, entry, installed))
        if installed is not None:
            warnings.extend(_disagreements(entry, installed))
    rows.extend(
        _row(w.backend.id, "installed", None, w)
        for w in discovered.worlds
        if not any(entry.id == w.backend.id and entry.runtime == "python" for entry in manifest.worlds)
    )
    return rows, list(dict.fromkeys(warnings))


def _row(world_id: str, status: str, entry: ManifestEntry | None, installed: InstalledWorld | None) -> dict[str, Any]:
    """A World as ``list`` shows it; an installed plugin's own claims win over the manifest's."""
    claims = installed.backend if installed is not None else entry
    assert claims is not None, "a row has a manifest entry, an installed World, or both"
    return {
        "id": world_id,
        "status": status,
        "name": entry.name if entry is not None else None,
        "description": entry.description if entry is not None else claims.description,
        "inManifest": entry is not None,
        "runtime": entry.runtime if entry is not None else "python",
        "plugin": installed.plugin if installed is not None else None,
        "distribution": installed.distribution if installed is not None else entry.pypi if entry is not None else None,
        "specVersions": sorted(claims.spec_versions),
        "capabilities": sorted(claims.capabilities),
    }


def _disagreements(entry: ManifestEntry, installed: InstalledWorld) -> list[str]:
    """Where the manifest's claims differ from what the installed plugin declares (the plugin is what runs)."""
    backend = installed.backend
    claims = [
        ("capabilities", _names(entry.capabilities), _names(backend.capabilities)),
        ("spec versions", _names(entry.spec_versions), _names(backend.spec_versions)),
    ]
    return [
        f"{entry.id}: the manifest claims {what} [{listed}], the installed plugin declares [{declared}]"
        for what, listed, declared in claims
        if listed != declared
    ]


def _names(values: Iterable[object]) -> str:
    return ", ".join(sorted(str(value) for value in values))


def _print_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    header = ("ID", "STATUS", "RUNTIME", "SPEC", "CAPABILITIES", "SOURCE")
    lines = [header] + [
        (
            row["id"],
            row["status"],
            row["runtime"],
            ",".join(str(v) for v in row["specVersions"]),
            ", ".join(row["capabilities"]) or "-",
            _source(row),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip(), file=out)
    if not rows:
        print("(no Worlds: no manifest here and no World plugins installed)", file=out)


def _source(row: dict[str, Any]) -> str:
    parts = ["manifest"] if row["inManifest"] else []
    if row["plugin"] is not None:
        parts.append(f"plugin {row['plugin']} ({row['distribution'] or 'no distribution'})")
    return " + ".join(parts)


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", type=Path, default=Path(DEFAULT_MANIFEST), help=f"default: ./{DEFAULT_MANIFEST}"
    )


@command(
    "validate-manifest",
    "Check a manifest against the schema and the rules it cannot express; print every problem.",
    arguments=_validate_arguments,
)
def validate_manifest(args: argparse.Namespace) -> int:
    try:
        manifest = load_manifest(args.path)
    except ManifestError as exc:
        for problem in exc.problems:
            print(problem)
        count = len(exc.problems)
        print(f"{args.path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    print(f"{args.path}: valid ({len(manifest.worlds)} Worlds: {', '.join(manifest.ids)})")
    return 0


def _test_arguments(parser: argparse.ArgumentParser) -> None:
    _manifest_option(parser)
    parser.add_argument("world", metavar="WORLD", help="a manifest or plugin id, a distribution, or module:attr")
    parser.add_argument("pytest_args", metavar="PYTEST_ARGS", nargs=argparse.REMAINDER, help="passed on to pytest")


@command("test", "Run the conformance suite against a World (pytest --world=WORLD).", arguments=_test_arguments)
def run_conformance(args: argparse.Namespace) -> int:
    manifest = _manifest(args)
    resolve_world(args.world, manifest=manifest)
    import pytest

    # Resolving WORLD above imported this distribution's packages before pytest could mark them for
    # assertion rewriting; pytest's warning about that is noise here (the suite's own modules are rewritten).
    quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    return int(pytest.main([*pytest_arguments(args.world, args.pytest_args, manifest=manifest), *quiet]))


def pytest_arguments(world: str, extra: Sequence[str], *, manifest: Manifest | None = None) -> list[str]:
    """The pytest command line for ``worlds test``.

    The conformance plugin resolves ``--world`` without the manifest, so a
    manifest entry whose entry point is ``module:attr`` is passed as that
    reference. ``-p conformance.plugin`` is only added when pytest will not
    autoload it from its ``pytest11`` entry point: loading it twice is an error.
    """
    entry = manifest.get(world) if manifest is not None else None
    reference = world
    if entry is not None and entry.entry_point is None:
        reference = npm_reference(entry)
    elif entry is not None and entry.entry_point is not None and ":" in entry.entry_point:
        reference = entry.entry_point
    autoload_off = bool(os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")) or "--disable-plugin-autoload" in extra
    plugin = ["-p", "conformance.plugin"] if autoload_off else []
    return [f"--world={reference}", *plugin, *extra]


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    _manifest_option(parser)
    parser.add_argument(
        "world",
        metavar="WORLD",
        nargs="+",
        help="a manifest or plugin id, a distribution, module:attr, or npm:<package>@<version>; several make one table",
    )
    parser.add_argument("--world-config", default="", help="the World's settings as a JSON object")
    parser.add_argument("--events", type=int, default=1000, help="events.create calls per run (default 1000)")
    parser.add_argument("--messages", type=int, default=1000, help="queue messages per run (default 1000)")
    parser.add_argument("--latency-samples", type=int, default=200, help="one-at-a-time messages for latency")
    parser.add_argument("--writers", default="1,4", help="concurrent event writers to measure, e.g. 1,4")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


@command(
    "bench", "Measure a World: events.create/s, queue messages/s, enqueue->handler latency.", arguments=_bench_arguments
)
def run_bench(args: argparse.Namespace) -> int:
    from . import bench

    manifest = _manifest(args)
    backends = [resolve_world(world, manifest=manifest) for world in args.world]
    try:
        settings = json.loads(args.world_config) if args.world_config else {}
        writers = [int(w) for w in args.writers.split(",") if w]
    except ValueError as exc:
        raise CommandError(f"bad --world-config or --writers: {exc}") from None
    results = []
    for world, backend in zip(args.world, backends, strict=True):
        result = bench.run(
            backend,
            settings,
            events=args.events,
            messages=args.messages,
            latency_samples=args.latency_samples,
            writers=writers,
            repeats=args.repeats,
        )
        # Labelled as named on the command line: upstream's local World and ours share the id "local".
        results.append(dataclasses.replace(result, world=world) if len(backends) > 1 else result)
    if args.json:
        data = [dataclasses.asdict(result) for result in results]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    elif len(results) == 1:
        print("\n".join(results[0].lines()))
    else:
        print("\n".join(bench.table(results)))
    return 0


def _migrate_arguments(parser: argparse.ArgumentParser) -> None:
    _manifest_option(parser)
    parser.add_argument("world", metavar="WORLD", help="a manifest or plugin id, a distribution, or module:attr")
    parser.add_argument("--world-config", default="", help="the World's settings as a JSON object")


@command("migrate", "Apply a World's storage migrations (idempotent).", arguments=_migrate_arguments)
def run_migrate(args: argparse.Namespace) -> int:
    backend = resolve_world(args.world, manifest=_manifest(args))
    if backend.migrate is None:
        raise CommandError(f"world {backend.id!r} has no migrations")
    try:
        config = json.loads(args.world_config) if args.world_config else dict(backend.default_config())
    except ValueError as exc:
        raise CommandError(f"bad --world-config: {exc}") from None
    try:
        print(backend.migrate(config))
    except WorkflowWorldError as exc:
        raise CommandError(str(exc)) from None
    return 0


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    if isinstance(exc, ManifestError) and len(exc.problems) > 1:
        source = exc.source or "manifest"
        return (
            f"{source}: invalid manifest, {len(exc.problems)} problems (see 'worlds validate-manifest {source}'); "
            f"first: {exc.problems[0]}"
        )
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
