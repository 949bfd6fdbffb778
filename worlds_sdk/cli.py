"""The ``worlds`` command: list, validate and test Worlds.

Subcommands live in one registry (:data:`COMMANDS`), filled by the
:func:`command` decorator: a new subcommand is a function taking the parsed
arguments and returning an exit code, plus an optional function adding its
arguments. Handlers import what they need (pytest, a World's plugin) when they
run, so ``worlds --help`` and ``worlds --version`` never import a World.

Errors a user can cause (a bad argument, an unknown World, an invalid
manifest, a file that cannot be read, a World that refuses its config or cannot
be reached) end as one line ``worlds: error: …`` on stderr and a non-zero exit
code that says which kind it was, never as a traceback.
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
from .columns import aligned
from .discovery import (
    Discovered,
    DiscoveryError,
    InstalledWorld,
    WorldNotFoundError,
    discover,
    npm_reference,
    resolve_world,
)
from .errors import ValidationError, WorkflowWorldError
from .inspection import DeadLetter
from .installed import InstalledCheck, check_installed
from .manifest import Manifest, ManifestEntry, ManifestError, load_manifest

DEFAULT_MANIFEST = "worlds-manifest.json"
USAGE_ERROR = 2
"""Exit code for bad input: an unknown option or World, an invalid manifest or World config."""
WORLD_ERROR = 69
"""Exit code when a World fails or refuses for another reason than bad input (sysexits' EX_UNAVAILABLE)."""
OS_ERROR = 74
"""Exit code for an operating-system error: a file that cannot be read or written (sysexits' EX_IOERR)."""
INTERRUPTED = 130
"""Exit code after Ctrl-C, as a shell reports a process ended by SIGINT."""


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
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version print and exit 0
            return _exit_code(exc)
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except SystemExit as exc:  # a command's sys.exit(): its code, or its message and 1
        return _exit_code(exc)
    except KeyboardInterrupt:
        print("worlds: interrupted", file=sys.stderr)
        return INTERRUPTED
    except OSError as exc:
        return _error(_os_message(exc), OS_ERROR)
    except ValidationError as exc:  # a World refused its config: bad input too
        return _error(str(exc), USAGE_ERROR)
    except WorkflowWorldError as exc:
        return _error(f"{type(exc).__name__}: {exc}", WORLD_ERROR)
    except (CommandError, DiscoveryError, ManifestError) as exc:
        return _error(_message(exc), USAGE_ERROR)


def _error(message: str, code: int) -> int:
    print(f"worlds: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter would make of ``exc``: ``None`` is 0, a message is printed and 1."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    return _error(str(exc.code), 1)


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
        _row(w.backend.id, "not installed" if w.install else "installed", None, w)
        for w in discovered.worlds
        if not any(entry.id == w.backend.id and entry.runtime == "python" for entry in manifest.worlds)
    )
    return rows, list(dict.fromkeys(warnings))


def _row(world_id: str, status: str, entry: ManifestEntry | None, installed: InstalledWorld | None) -> dict[str, Any]:
    """A World as ``list`` shows it; an installed plugin's own claims win over the manifest's.

    ``install`` is the command that would make a World that is not installed usable: its
    plugin's missing extra, else the manifest's package.
    """
    claims = installed.backend if installed is not None else entry
    assert claims is not None, "a row has a manifest entry, an installed World, or both"
    install = None
    if status == "not installed":
        install = installed.install if installed is not None else None
        install = install or (f"pip install '{entry.package}'" if entry is not None else None)
    return {
        "id": world_id,
        "status": status,
        "install": install,
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
            f"{row['status']}: {row['install']}" if row["install"] else row["status"],
            row["runtime"],
            ",".join(str(v) for v in row["specVersions"]),
            ", ".join(row["capabilities"]) or "-",
            _source(row),
        )
        for row in rows
    ]
    for line in aligned(lines):
        print(line, file=out)
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
    parser.add_argument(
        "--installed",
        action="store_true",
        help="also check that each Python entry's entryPoint resolves here to a World with its id, "
        "spec versions and capabilities",
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
    if args.installed:
        return _print_installed_check(args.path, check_installed(manifest))
    return 0


def _print_installed_check(path: Path, check: InstalledCheck) -> int:
    for world_id, reason in check.skipped:
        print(f"{path}: {world_id}: skipped, {reason}", file=sys.stderr)
    for problem in check.problems:
        print(problem)
    if check.problems:
        count = len(check.problems)
        print(f"{path}: {count} mismatch{'es' if count != 1 else ''} with the installed Worlds", file=sys.stderr)
        return 1
    print(f"{path}: the installed Worlds match ({', '.join(check.checked) or 'no Python entries'})")
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
    _world_config_option(parser)
    parser.add_argument(
        "--events", type=_count, default=3000, help="lifecycle events per figure, 6 per run (default 3000)"
    )
    parser.add_argument("--messages", type=_count, default=1000, help="queue messages per run (default 1000)")
    parser.add_argument("--latency-samples", type=_count, default=200, help="one-at-a-time messages for latency")
    parser.add_argument("--writers", type=_counts, default="1,8", help="runs in flight to measure, e.g. 1,8")
    parser.add_argument("--repeats", type=_count, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


@command(
    "bench", "Measure a World on the runtime's workload, with ratios to its storage floors.", arguments=_bench_arguments
)
def run_bench(args: argparse.Namespace) -> int:
    from . import bench

    manifest = _manifest(args)
    backends = [resolve_world(world, manifest=manifest) for world in args.world]
    results = []
    for world, backend in zip(args.world, backends, strict=True):
        result = bench.run(
            backend,
            args.world_config or {},
            events=args.events,
            messages=args.messages,
            latency_samples=args.latency_samples,
            writers=args.writers,
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
    _world_config_option(parser)


@command("migrate", "Apply a World's storage migrations (idempotent).", arguments=_migrate_arguments)
def run_migrate(args: argparse.Namespace) -> int:
    backend = resolve_world(args.world, manifest=_manifest(args))
    if backend.migrate is None:
        raise CommandError(f"world {backend.id!r} has no migrations")
    print(backend.migrate(args.world_config if args.world_config is not None else dict(backend.default_config())))
    return 0


def _world_arguments(parser: argparse.ArgumentParser) -> None:
    _manifest_option(parser)
    parser.add_argument("world", metavar="WORLD", help="a manifest or plugin id, a distribution, or module:attr")
    _world_config_option(parser)


def _inspect_arguments(parser: argparse.ArgumentParser) -> None:
    _world_arguments(parser)
    parser.add_argument("run_id", metavar="RUN_ID", help="the run, e.g. wrun_01J…")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


@command("inspect", "Show a run's timeline, steps, hooks, waits and streams.", arguments=_inspect_arguments)
def run_inspect(args: argparse.Namespace) -> int:
    import asyncio

    from .errors import NotFoundError
    from .operating import opened
    from .timeline import render, run_timeline

    async def main() -> dict[str, Any]:
        async with opened(resolve_world(args.world, manifest=_manifest(args)), args.world_config) as world:
            return await run_timeline(world, args.run_id)

    try:
        report = asyncio.run(main())
    except NotFoundError as exc:
        raise CommandError(f"run {args.run_id!r}: {exc}") from None
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def _doctor_arguments(parser: argparse.ArgumentParser) -> None:
    from .doctor import Thresholds

    _world_arguments(parser)
    defaults = Thresholds()
    parser.add_argument("--stuck-after", type=_seconds, default=defaults.stuck_after, metavar="SECONDS")
    parser.add_argument("--max-failures", type=_count, default=defaults.max_failures, metavar="N")
    parser.add_argument("--max-ready-age", type=_seconds, default=defaults.max_ready_age, metavar="SECONDS")
    parser.add_argument("--retry-grace", type=_seconds, default=defaults.retry_grace, metavar="SECONDS")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


@command(
    "doctor",
    "Report stuck runs, failing and dead messages, overdue retries; exit 1 when something needs attention.",
    arguments=_doctor_arguments,
)
def run_doctor(args: argparse.Namespace) -> int:
    import asyncio

    from . import doctor
    from .errors import IncompatibleFormatError
    from .operating import inspectable, opened

    backend = resolve_world(args.world, manifest=_manifest(args))
    limits = doctor.Thresholds(
        stuck_after=args.stuck_after,
        max_failures=args.max_failures,
        max_ready_age=args.max_ready_age,
        retry_grace=args.retry_grace,
    )

    async def main() -> dict[str, Any]:
        async with opened(backend, args.world_config) as world:
            return await doctor.examine(world, inspectable(backend, world), limits)

    try:
        report = asyncio.run(main())
    except IncompatibleFormatError as exc:
        report = doctor.unopenable(exc)
    print(json.dumps(report, indent=2) if args.json else doctor.render(report))
    return 0 if report["healthy"] else 1


def _gc_arguments(parser: argparse.ArgumentParser) -> None:
    _world_arguments(parser)
    parser.add_argument(
        "--completed-before", required=True, metavar="DURATION", help="age of the runs to delete: 30d, 12h, 15m, 90s"
    )
    parser.add_argument("--batch-size", type=_count, default=500, help="runs per transaction (default 500)")
    parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")


@command("gc", "Delete terminal runs completed before a cutoff, with all they own.", arguments=_gc_arguments)
def run_gc(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import UTC, datetime

    from .operating import inspectable, opened, parse_duration
    from .retention import collect

    backend = resolve_world(args.world, manifest=_manifest(args))
    cutoff = datetime.now(UTC) - parse_duration(args.completed_before)

    def progress(total: int) -> None:
        print(f"deleted {total} runs…", file=sys.stderr, flush=True)

    async def main() -> int:
        async with opened(backend, args.world_config) as world:
            inspection = inspectable(backend, world)
            if args.dry_run:
                return await inspection.count_expired_runs(cutoff)
            return await collect(inspection, cutoff, batch_size=args.batch_size, progress=progress)

    count = asyncio.run(main())
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {count} terminal runs completed before {cutoff.isoformat(timespec='seconds')}")
    return 0


def _dead_letters_arguments(parser: argparse.ArgumentParser) -> None:
    _world_arguments(parser)
    parser.add_argument("--limit", type=_count, default=100, help="at most N, oldest first (default 100)")
    parser.add_argument("--json", action="store_true", help="print the dead letters as JSON")


@command("dead-letters", "List dead letters, oldest first, with their error.", arguments=_dead_letters_arguments)
def run_dead_letters(args: argparse.Namespace) -> int:
    import asyncio

    from .operating import inspectable, opened, render_dead_letters

    backend = resolve_world(args.world, manifest=_manifest(args))

    async def main() -> Sequence[DeadLetter]:
        async with opened(backend, args.world_config) as world:
            return await inspectable(backend, world).list_dead_letters(limit=args.limit)

    letters = asyncio.run(main())
    if args.json:
        print(json.dumps([_dead_letter_json(d) for d in letters], indent=2))
    else:
        print(render_dead_letters(letters))
    return 0


def _dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    from .codec import to_wire

    return {
        "message_id": letter.message_id,
        "queue_name": letter.queue_name,
        "message": to_wire(letter.message),
        "attempt": letter.attempt,
        "failures": letter.failures,
        "error": letter.error,
        "dead_at": letter.dead_at.isoformat(),
    }


def _requeue_arguments(parser: argparse.ArgumentParser) -> None:
    _world_arguments(parser)
    parser.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID", help="dead letters to requeue")
    parser.add_argument("--all", action="store_true", help="requeue every dead letter")


@command(
    "requeue",
    "Put dead letters back on their queue (same id, failures from 0); exit 1 if an id was not a dead letter.",
    arguments=_requeue_arguments,
)
def run_requeue(args: argparse.Namespace) -> int:
    import asyncio

    from .operating import inspectable, opened

    if args.all == bool(args.message_ids):
        raise CommandError("give the MESSAGE_IDs to requeue, or --all (not both)")
    ids = None if args.all else list(dict.fromkeys(args.message_ids))
    backend = resolve_world(args.world, manifest=_manifest(args))

    async def main() -> int:
        async with opened(backend, args.world_config) as world:
            return await inspectable(backend, world).requeue(ids)

    moved = asyncio.run(main())
    print(f"requeued {moved} dead letter{'s' if moved != 1 else ''}")
    if ids is not None and moved < len(ids):
        print(f"worlds: {len(ids) - moved} of the {len(ids)} ids were not dead letters", file=sys.stderr)
        return 1
    return 0


def _quarantine_arguments(parser: argparse.ArgumentParser) -> None:
    _world_arguments(parser)
    parser.add_argument("message_id", metavar="MESSAGE_ID", help="the live message to park")
    parser.add_argument("--reason", required=True, help="kept as the dead letter's error")


@command("quarantine", "Park a live (poison) message as a dead letter.", arguments=_quarantine_arguments)
def run_quarantine(args: argparse.Namespace) -> int:
    import asyncio

    from .errors import NotFoundError
    from .operating import inspectable, opened

    backend = resolve_world(args.world, manifest=_manifest(args))

    async def main() -> None:
        async with opened(backend, args.world_config) as world:
            await inspectable(backend, world).quarantine(args.message_id, args.reason)

    try:
        asyncio.run(main())
    except NotFoundError as exc:
        raise CommandError(f"message {args.message_id!r}: {exc}") from None
    print(f"quarantined {args.message_id}")
    return 0


def _metrics_arguments(parser: argparse.ArgumentParser) -> None:
    _world_arguments(parser)
    parser.add_argument(
        "--serve", type=_port, metavar="PORT", help="serve /metrics and /healthz on 127.0.0.1:PORT (0: any free port)"
    )


@command(
    "metrics",
    "Print the World's queue and run figures as Prometheus text, or serve them.",
    arguments=_metrics_arguments,
)
def run_metrics(args: argparse.Namespace) -> int:
    import asyncio

    from . import metrics
    from .operating import inspectable, opened

    backend = resolve_world(args.world, manifest=_manifest(args))

    def listening(port: int) -> None:
        print(f"serving http://127.0.0.1:{port}/metrics and /healthz", flush=True)

    async def main() -> str:
        async with opened(backend, args.world_config) as world:
            inspection = inspectable(backend, world)
            if args.serve is None:
                return await metrics.exposition(world, inspection)

            async def healthy() -> None:
                await inspection.queue_stats()

            await metrics.serve(args.serve, lambda: metrics.exposition(world, inspection), healthy, listening)
            return ""

    sys.stdout.write(asyncio.run(main()))
    return 0


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """A non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number of seconds, got {text!r}")
    return value


def _world_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world-config", type=_json_object, help="the World's settings as a JSON object")


def _json_object(text: str) -> dict[str, Any]:
    """``--world-config``: a World's settings are a mapping, so anything but a JSON object is refused here."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__} {text!r}")
    return value


def _count(text: str) -> int:
    """A positive integer option (argparse's ``int`` also takes 0 and negatives, which no count means)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _counts(text: str) -> list[int]:
    """A comma-separated list of positive integers, e.g. ``1,4``."""
    parts = text.split(",")
    try:
        return [_count(part.strip()) for part in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}") from None


def _os_message(exc: OSError) -> str:
    """``path: No such file or directory``, as the shell's own tools say it."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename is not None else reason


def _new_arguments(parser: argparse.ArgumentParser) -> None:
    from .scaffold import TEMPLATES

    parser.add_argument("name", metavar="NAME", help="the World's id, e.g. my-world (package my_world)")
    parser.add_argument("--template", choices=TEMPLATES, default=TEMPLATES[0], help="default: %(default)s")
    parser.add_argument("--directory", type=Path, help="where to create the package (default: ./NAME)")


@command(
    "new",
    "Create a World package: skeleton or in-memory World, tests, tox, CI, manifest entry.",
    arguments=_new_arguments,
)
def new_world(args: argparse.Namespace) -> int:
    from .scaffold import ScaffoldError, create

    directory: Path = args.directory or Path(args.name)
    try:
        files = create(args.name, directory, template=args.template, sdk_version=__version__)
    except ScaffoldError as exc:
        raise CommandError(str(exc)) from None
    print(f"created {directory}/ ({args.template} template, {len(files)} files); next:")
    print(f"  cd {directory} && python -m pip install -e . && pytest --world={args.name}")
    return 0


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", metavar="REPORT.json", nargs="+", type=Path, help="from --worlds-report")
    parser.add_argument("--badge", metavar="PATH", type=Path, help="write a shields.io endpoint JSON (one report only)")


@command(
    "report",
    "Render per-rule JSON reports as Markdown (several side by side), or a badge.",
    arguments=_report_arguments,
)
def render_report(args: argparse.Namespace) -> int:
    from conformance.report import Report, ReportError
    from conformance.summary import badge, markdown

    if args.badge is not None and len(args.reports) != 1:
        raise CommandError("--badge takes exactly one report (one badge per World)")
    try:
        reports = [Report.load(path) for path in args.reports]
    except ReportError as exc:
        raise CommandError(str(exc)) from None
    if args.badge is not None:
        args.badge.write_text(json.dumps(badge(reports[0])) + "\n", encoding="utf-8")
    else:
        sys.stdout.write(markdown(reports))
    return 0


def _ci_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["matrix"], help="matrix: the GitHub Actions matrix of testable Worlds")
    parser.add_argument(
        "manifest", nargs="?", type=Path, default=Path(DEFAULT_MANIFEST), help=f"default: ./{DEFAULT_MANIFEST}"
    )


@command("ci", "Print CI input from the manifest: `worlds ci matrix [MANIFEST]`.", arguments=_ci_arguments)
def ci(args: argparse.Namespace) -> int:
    from .ci import ci_matrix

    matrix = ci_matrix(load_manifest(args.manifest))
    for world_id, reason in matrix.excluded:
        print(f"worlds: {world_id}: left out of the matrix: {reason}", file=sys.stderr)
    json.dump(matrix.to_json(), sys.stdout)
    print()
    return 0


def _message(exc: BaseException) -> str:
    if isinstance(exc, ManifestError) and len(exc.problems) > 1:
        source = exc.source or "manifest"
        return (
            f"{source}: invalid manifest, {len(exc.problems)} problems (see 'worlds validate-manifest {source}'); "
            f"first: {exc.problems[0]}"
        )
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
