"""Sandbox instances provisioned one test ahead.

Provisioning is setup, not the World's work, and it can be slow: the Postgres
sandbox creates and migrates a schema (~75 ms), an npm World's sandbox may run
the package's setup command. Most of a conformance test's time is spent waiting
(on a queue, a lease, child processes), so the next test's instance is
provisioned in a worker thread while the current test runs, and the last one is
destroyed there too (dropping a schema: ~22 ms). Every test still gets an
instance of its own that nobody has opened: the one made ahead was only
provisioned. It asks of a sandbox what its protocol already promises: instances
may exist at once, isolated from each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

from worlds_sdk.backend import Sandbox, WorldConfig

_Provisioned = tuple[ExitStack, WorldConfig]


class InstanceSupply:
    """Hands out fresh instances of one sandbox: the next is provisioned, the last destroyed, in a worker.

    A destroyed instance's failure (the sandbox cannot drop what it made) is raised
    when the next instance is asked for, or by :meth:`close`: infrastructure, like a
    failed provisioning.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worlds-provision")
        self._next: Future[_Provisioned] | None = None
        self._destroying: list[Future[None]] = []

    def _provision(self) -> _Provisioned:
        stack = ExitStack()
        config = stack.enter_context(self._sandbox.instance())
        return stack, config

    def _check_destroyed(self, *, wait: bool) -> None:
        """Raise the first failed destruction among those finished (all of them, with ``wait``), once."""
        finished = [d for d in self._destroying if wait or d.done()]
        self._destroying = [d for d in self._destroying if d not in finished]
        for destroyed in finished:
            destroyed.result()

    @contextmanager
    def instance(self) -> Iterator[WorldConfig]:
        """A fresh instance, destroyed after use; a failed provisioning or destruction raises here."""
        self._check_destroyed(wait=False)
        ready, self._next = self._next, None
        stack, config = ready.result() if ready is not None else self._provision()
        self._next = self._executor.submit(self._provision)
        try:
            yield config
        finally:
            self._destroying.append(self._executor.submit(stack.close))

    def close(self) -> None:
        """Wait for the destructions, destroy the instance made ahead (nobody will use it), stop the worker."""
        ready, self._next = self._next, None
        try:
            self._check_destroyed(wait=True)
        finally:
            try:
                if ready is not None and ready.exception() is None:  # a failed provisioning left nothing
                    ready.result()[0].close()  # a failed destruction raises, as the docstring says
            finally:
                self._executor.shutdown(wait=True)
