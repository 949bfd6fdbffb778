"""The ``pytest11`` plugin: ``pytest --world=<id|package|module:attr>`` runs the suite.

Without ``--world`` (or the ``world`` ini key) the plugin does nothing, so
installing worlds-sdk never disturbs another project's test run.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest
from _pytest.config import Config as _Config

from worlds_sdk.discovery import DiscoveryError, WorldNotFoundError, resolve_world

from . import profiles
from .harness import SetupFailed, WorldHarness, setup_step
from .markers import rule_of, spec_allows
from .report import RuleResults
from .selection import SELECTED, SelectedWorld, parse_world_config

SUITE_DIR = Path(__file__).parent / "suite"

_OPTIONS = (
    ("world", "World under test: a manifest/plugin id, a distribution name, or module:attr."),
    ("world-config", "The World's settings: a JSON object or key=value,key=value."),
    ("spec-version", "Spec version (profile) to check; default: the World's highest."),
    ("worlds-report", "Write the per-rule JSON report to this path."),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("worlds", "World conformance")
    for name, help_text in _OPTIONS:
        group.addoption(f"--{name}", dest=name.replace("-", "_"), default=None, help=help_text)
        parser.addini(name.replace("-", "_"), help_text, default=None)
    group.addoption(
        "--certify",
        action="store_true",
        default=None,
        help="Certification run: a MUST rule's test may not be skipped (a skip is a failure).",
    )
    parser.addini("certify", "Certification run (see --certify).", type="bool", default=False)


def _setting(config: pytest.Config, name: str) -> object:
    dest = name.replace("-", "_")
    value = config.getoption(dest)
    return value if value is not None else config.getini(dest)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "worlds_requires(*capabilities): the World capabilities a test needs")
    config.addinivalue_line("markers", "worlds_observes(*observations): values a test reads off the World")
    config.addinivalue_line("markers", "worlds_spec(constraint): the spec versions a test applies to")
    config.addinivalue_line("markers", "worlds_pins(method, *parameters): read parameters a test shows honoured")
    reference = _setting(config, "world")
    if not reference:
        return
    try:
        backend = resolve_world(str(reference))
    except (WorldNotFoundError, DiscoveryError) as exc:
        raise pytest.UsageError(" ".join(str(exc).split())) from None
    spec_value = _setting(config, "spec-version")
    try:
        spec_version = int(str(spec_value)) if spec_value else backend.max_spec_version
    except ValueError:
        raise pytest.UsageError(f"--spec-version: expected a whole number, got {spec_value!r}") from None
    if spec_version not in backend.spec_versions:
        raise pytest.UsageError(
            f"--spec-version {spec_version}: world {backend.id!r} supports {sorted(backend.spec_versions)}"
        )
    certify = bool(_setting(config, "certify"))
    try:
        profile = profiles.register_and_load(config.getoption("hypothesis_profile", None), certify=certify)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SELECTED] = SelectedWorld(
        reference=str(reference),
        backend=backend,
        settings=parse_world_config(str(_setting(config, "world-config") or "")),
        spec_version=spec_version,
        certify=certify,
        hypothesis_profile=profile,
    )
    report_path = _setting(config, "worlds-report")
    config.pluginmanager.register(_Recorder(config.stash[SELECTED], str(report_path) if report_path else None))
    _collect_suite(config)


def _collect_suite(config: pytest.Config) -> None:
    """Collect the suite wherever pytest runs.

    Explicit paths are kept and the suite is added, unless one of them already points
    into the suite (re-running one failed test must not run all of them).
    """
    suite = str(SUITE_DIR)
    if config.args_source != _Config.ArgsSource.ARGS:
        config.args[:] = [suite]
    elif not any(_inside_suite(arg, config) for arg in config.args):
        config.args.append(suite)


def _inside_suite(arg: str, config: pytest.Config) -> bool:
    path = Path(arg.split("::", 1)[0])
    if not path.is_absolute():
        path = config.invocation_params.dir / path
    return path.resolve().is_relative_to(SUITE_DIR.resolve())


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    selected = config.stash.get(SELECTED, None)
    if selected is None:
        return None
    caps = ", ".join(sorted(selected.capabilities)) or "none"
    return [
        f"world: {selected.reference} (backend {selected.backend.id}, package "
        f"{selected.backend.distribution or '?'} {selected.package_version})",
        f"world spec version: {selected.spec_version}; capabilities: {caps}"
        + ("; CERTIFICATION RUN" if selected.certify else ""),
    ]


@pytest.fixture(scope="session")
def world(pytestconfig: pytest.Config) -> Iterator[WorldHarness]:
    """The World under test: ``world.run(async_body)`` runs a body against a fresh instance."""
    selected = pytestconfig.stash.get(SELECTED, None)
    if selected is None:
        pytest.fail("the conformance suite needs --world=<world>")
    with ExitStack() as stack:
        with setup_step(f"starting the sandbox of world {selected.backend.id!r}"):
            sandbox = stack.enter_context(selected.backend.sandbox(selected.settings))
        harness = WorldHarness(selected, sandbox)
        stack.callback(harness.close)
        yield harness


NOT_JUDGED = pytest.ExitCode.INTERNAL_ERROR
"""Exit status of a run that setup stopped: 3, neither 0 (the World passed) nor 1 (it failed)."""


def _in_suite(item: pytest.Item) -> bool:
    return Path(str(item.path)).is_relative_to(SUITE_DIR)


def pytest_runtest_setup(item: pytest.Item) -> None:
    selected = item.config.stash.get(SELECTED, None)
    if selected is None or not _in_suite(item):
        return
    why = _why_unchecked(item, selected)
    if why is None:
        return
    ref = rule_of(item.name)
    if selected.certify and ref is not None and ref.level == "MUST":
        pytest.fail(f"certification: MUST rule {ref.rule} cannot be checked: {why}", pytrace=False)
    pytest.skip(why)


def _why_unchecked(item: pytest.Item, selected: SelectedWorld) -> str | None:
    """Why this World cannot be asked what the test asks: spec version, capability, or what it cannot show."""
    for mark in item.iter_markers("worlds_spec"):
        if not spec_allows(mark.args[0], selected.spec_version):
            return f"applies to spec {mark.args[0]}, running spec {selected.spec_version}"
    required = {str(c) for mark in item.iter_markers("worlds_requires") for c in mark.args}
    if missing := sorted(required - set(selected.capabilities)):
        return f"world {selected.backend.id!r} does not declare capability {', '.join(missing)}"
    limits = selected.backend.unobservable
    if hidden := sorted({str(o) for mark in item.iter_markers("worlds_observes") for o in mark.args} & set(limits)):
        return "; ".join(f"backend {selected.backend.id!r} cannot show {o}: {limits[o]}" for o in hidden)  # type: ignore[index]
    return None


class _Recorder:
    """Per-rule bookkeeping, registered only when a World is under test."""

    def __init__(self, selected: SelectedWorld, report_path: str | None) -> None:
        self.selected = selected
        self.report_path = report_path
        self.results = RuleResults()
        self.suite_ids: set[str] = set()
        self.deselected = 0
        self.setup_error: str | None = None

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        self.deselected += sum(1 for item in items if _in_suite(item))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.suite_ids = {item.nodeid for item in items if _in_suite(item)}

    def pytest_collection_finish(self) -> None:
        if self.selected.certify and self.deselected:
            pytest.exit(
                f"certification runs the whole suite, but {self.deselected} of its tests were deselected "
                "(-k, -m, --deselect, --lf); drop the selection or --certify",
                returncode=pytest.ExitCode.USAGE_ERROR,
            )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._setup_guard())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self._setup_guard())

    def _setup_guard(self) -> Generator[None, None, None]:
        """Stop the whole run at the first setup failure: no test after it could give a verdict."""
        try:
            return (yield)
        except SetupFailed as exc:
            self.setup_error = str(exc)
            pytest.exit(f"worlds: setup error, no verdict on the World: {exc}", returncode=NOT_JUDGED)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        ref = rule_of(report.nodeid.rsplit("::", 1)[-1])
        if ref is not None and report.nodeid in self.suite_ids:
            self.results.add(ref, report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = self.results.matrix()
        if lines:
            terminalreporter.section("World conformance by rule")
            for line in lines:
                terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.setup_error is not None:
            self.results.not_run(self.suite_ids, self.setup_error)
        if self.report_path:
            complete = not self.deselected and self.suite_ids and self.suite_ids <= self.results.records.keys()
            self.results.write(
                self.report_path,
                self.selected,
                exitstatus=int(exitstatus),
                complete=bool(complete),
                deselected=self.deselected,
                setup_error=self.setup_error,
            )
