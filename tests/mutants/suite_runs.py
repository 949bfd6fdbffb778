"""Runs of the conformance suite in child processes, for the mutant meta-tests.

A run is ``pytest --world=<world> -k <selection>`` in a directory of its own,
judged afterwards from its JSON report. Runs are started ahead of the tests that
judge them, a few at a time: most of a run is a child starting up or waiting
out a delivery timeout, so overlapping them cuts the wall time without keeping
more than ``jobs`` children alive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
Result = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


@dataclass(frozen=True)
class SuiteRun:
    """One ``pytest --world=...`` invocation; equal runs are executed once and their result shared."""

    world: str
    selection: str | None
    """A ``-k`` expression, so only the tests a check needs run; ``None`` runs the whole suite."""
    extra: tuple[str, ...] = ()
    slow: bool = field(default=False, compare=False)
    """It waits out a timeout (a lost message): started first, so the wait overlaps other runs."""


class SuiteRunner:
    """Executes each distinct :class:`SuiteRun` once, at most ``jobs`` at a time, and keeps its result."""

    def __init__(self, workdir: Path, *, jobs: int) -> None:
        self._workdir = workdir
        self._numbers = count()
        self._pool = ThreadPoolExecutor(jobs, thread_name_prefix="suite-run")
        self._runs: dict[SuiteRun, Future[Result]] = {}
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        # Without a bytecode cache every child compiles every module again and pytest
        # rewrites the asserts of every plugin (hypothesis included): over a second a run.
        # The cache lives in the work directory, so nothing is written into the checkout.
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
        # The checkout's root comes last, for ``tests.mutants``: the installed packages win.
        env["PYTHONPATH"] = os.pathsep.join(p for p in [os.environ.get("PYTHONPATH"), str(ROOT)] if p)
        env["WORLDS_HYPOTHESIS_PROFILE"] = "quick"
        self._env = env

    def start(self, runs: list[SuiteRun]) -> None:
        """Queue runs not yet started, the slow ones first."""
        for run in sorted(runs, key=lambda r: not r.slow):
            if run not in self._runs:
                self._runs[run] = self._pool.submit(self._execute, run)

    def result(self, run: SuiteRun) -> Result:
        self.start([run])
        return self._runs[run].result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def _execute(self, run: SuiteRun) -> Result:
        cwd = self._workdir / f"run-{next(self._numbers)}"
        cwd.mkdir()
        report = cwd / "report.json"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                f"--world={run.world}",
                *(["-k", run.selection] if run.selection is not None else []),
                f"--worlds-report={report}",
                "-p",
                "no:cacheprovider",
                "-q",
                "--timeout=120",
                *run.extra,
            ],
            cwd=cwd,
            env=self._env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return proc, json.loads(report.read_text()) if report.exists() else {}
