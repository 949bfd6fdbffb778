"""Run async test bodies against fresh, isolated Worlds.

Every call to :meth:`WorldHarness.run` takes a new, empty instance of the
backend's sandbox (provisioned while the previous test ran:
:mod:`conformance.instances`), opens it, runs the body in a new event loop and
closes the World and destroys the instance afterwards -- also when the body
fails -- so tests and hypothesis examples never see each other's data.

Provisioning and opening are setup, not the World's verdict: when they fail
(a service is down, a sandbox setting is wrong, a runtime is missing) the
harness raises :class:`SetupFailed` and the plugin ends the run with one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from typing import TypeVar

from worlds_sdk.backend import Sandbox, WorldConfig
from worlds_sdk.capabilities import Capability
from worlds_sdk.errors import WorldUnavailableError
from worlds_sdk.models import Page, Pagination, Run
from worlds_sdk.protocols import World

from .deadlines import Deadlines
from .instances import InstanceSupply
from .processes import ChildProcess, Forkserver, spawn
from .selection import SelectedWorld

T = TypeVar("T")
BODY_TIMEOUT = 120.0
CLOSE_TIMEOUT = 30.0


class SetupFailed(BaseException):
    """Provisioning a sandbox or opening the World failed: infrastructure, not a World failure.

    A ``BaseException``, so neither hypothesis (which replays and shrinks on any
    ``Exception``) nor a test's ``except Exception`` takes it for the World's bug.
    """


@contextmanager
def setup_step(what: str) -> Iterator[None]:
    """Turn any exception raised while doing ``what`` into :class:`SetupFailed`, with the cause on one line."""
    try:
        yield
    except Exception as exc:
        raise SetupFailed(f"{what} failed: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc


class WorldContext:
    """One isolated World instance, as a test body sees it."""

    def __init__(
        self,
        selected: SelectedWorld,
        config: WorldConfig,
        stack: AsyncExitStack,
        deadlines: Deadlines,
        forkserver: Forkserver,
    ) -> None:
        self.selected = selected
        self.config = config
        self._stack = stack
        self._deadlines = deadlines
        self._forkserver = forkserver
        self._open_worlds: list[World] = []
        stack.push_async_callback(self._close_all)
        self.world = self._open()

    def _open(self) -> World:
        world: World = self._deadlines.wrap(self.selected.backend.factory(self.config))
        self._open_worlds.append(world)
        return world

    async def _close(self, world: World) -> None:
        if world in self._open_worlds:
            self._open_worlds.remove(world)
            await asyncio.wait_for(world.close(), CLOSE_TIMEOUT)

    async def _close_all(self) -> None:
        """Close every World still open, even when one of them fails to close."""
        errors: list[Exception] = []
        while self._open_worlds:
            try:
                await self._close(self._open_worlds[-1])
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise ExceptionGroup("closing the World failed", errors)

    async def open_another(self) -> World:
        """A second World object on the same instance (another client, same data)."""
        return self._open()

    async def restart(self) -> World:
        """Close the World and open it again on the same data, as after a process restart."""
        await self._close(self.world)
        self.world = self._open()
        return self.world

    async def spawn(self, name: str = "child") -> ChildProcess:
        """A child process on this World; it is stopped (or killed) when the body ends."""
        return await spawn(self._forkserver, self.config, name, cleanup=self._stack)

    async def spawn_many(self, n: int) -> list[ChildProcess]:
        return list(await asyncio.gather(*(self.spawn(f"child-{i}") for i in range(n))))

    def has(self, capability: Capability) -> bool:
        return capability in self.selected.capabilities


class WorldHarness:
    """Session-wide access to the World under test (the ``world`` fixture)."""

    def __init__(self, selected: SelectedWorld, sandbox: Sandbox) -> None:
        self.selected = selected
        self.sandbox = sandbox
        self.instances = InstanceSupply(sandbox)
        """Fresh instances, the next one provisioned while a test runs (close it with :meth:`close`)."""
        self.forkserver = Forkserver(selected.reference)
        """Forks the tests' child processes (started at the first)."""
        self.deadlines = Deadlines()
        """Every call on the World has a deadline; a method that hung once fails fast afterwards."""

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.selected.capabilities

    def run(self, body: Callable[[WorldContext], Awaitable[T]], *, timeout: float = BODY_TIMEOUT) -> T:
        with ExitStack() as instance:
            with setup_step("provisioning a sandbox instance"):
                config = instance.enter_context(self.instances.instance())
            return asyncio.run(self._main(config, body, timeout))

    def close(self) -> None:
        """End the fork server and destroy the instance provisioned ahead; before the sandbox ends."""
        self.forkserver.close()
        self.instances.close()

    async def _main(self, config: WorldConfig, body: Callable[[WorldContext], Awaitable[T]], timeout: float) -> T:
        async with AsyncExitStack() as stack:
            with setup_step("opening the World"):
                ctx = WorldContext(self.selected, config, stack, self.deadlines, self.forkserver)
                first = await _first_page(ctx.world)
                if first is not None and first.data:  # tests would see each other's runs and messages
                    raise RuntimeError(
                        "the backend's sandbox.instance() did not give an empty World (isolation is broken)"
                    )
            return await asyncio.wait_for(body(ctx), timeout)


async def _first_page(world: World) -> Page[Run] | None:
    """The first page of runs, to check the instance is empty; ``None`` if the World cannot list runs.

    Storage the World cannot reach (:class:`WorldUnavailableError`) is setup's failure. Any
    other error is the World's own -- a ``runs.list`` not written yet, say -- and is left for
    the tests to meet, so each fails by its rule instead of the run stopping.
    """
    try:
        return await world.runs.list(pagination=Pagination(limit=1))
    except WorldUnavailableError:
        raise
    except Exception:
        return None
