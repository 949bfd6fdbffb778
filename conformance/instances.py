"""Sandbox instances provisioned one test ahead.

Provisioning is setup, not the World's work, and it can be slow: the Postgres
sandbox creates and migrates a schema (~75 ms), an npm World's sandbox may run
the package's setup command. Most of a conformance test's time is spent waiting
(on a queue, a lease, child processes), so the next test's instance is
provisioned in a worker thread while the current test runs. Every test still
gets an instance of its own that nobody has opened: the one made ahead was only
provisioned. It asks of a sandbox what its protocol already promises: two
instances may exist at once, isolated from each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress

from worlds_sdk.backend import Sandbox, WorldConfig

_Provisioned = tuple[ExitStack, WorldConfig]


class InstanceSupply:
    """Hands out fresh instances of one sandbox, keeping the next one provisioned."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worlds-provision")
        self._next: Future[_Provisioned] | None = None

    def _provision(self) -> _Provisioned:
        stack = ExitStack()
        config = stack.enter_context(self._sandbox.instance())
        return stack, config

    @contextmanager
    def instance(self) -> Iterator[WorldConfig]:
        """A fresh instance, destroyed on exit; a failed provisioning raises here."""
        ready, self._next = self._next, None
        stack, config = ready.result() if ready is not None else self._provision()
        self._next = self._executor.submit(self._provision)
        with stack:
            yield config

    def close(self) -> None:
        """Destroy the instance made ahead (nobody will use it) and stop the worker."""
        ready, self._next = self._next, None
        if ready is not None:
            with suppress(Exception):  # provisioning failed: there is nothing to destroy
                ready.result()[0].close()
        self._executor.shutdown(wait=True)
