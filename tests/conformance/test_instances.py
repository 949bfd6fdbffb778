"""The harness's instances made one ahead: each test's own, made before it is asked for, all destroyed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conformance.instances import InstanceSupply
from worlds_sdk.backend import TempDirSandbox, WorldConfig

Eventually = Callable[..., Awaitable[object]]


def test_each_instance_is_fresh_and_the_next_is_made_ahead(tmp_path: Path, eventually: Eventually) -> None:
    supply = InstanceSupply(TempDirSandbox({"path": str(tmp_path)}, {}))
    seen = []

    async def made_ahead() -> bool:
        return len(list(tmp_path.iterdir())) == 2  # this test's instance and the next one

    try:
        for _ in range(3):
            with supply.instance() as config:
                seen.append(Path(str(config["path"])).parent)
                asyncio.run(eventually(made_ahead, what="the next instance made while this one is in use"))
        assert len(set(seen)) == 3, "every request gets an instance of its own"
    finally:
        supply.close()
    assert list(tmp_path.iterdir()) == [], "every instance, the one made ahead too, is destroyed"


class _FailingDrop:
    """A sandbox whose second instance cannot be destroyed."""

    def __init__(self) -> None:
        self.made = 0

    @contextmanager
    def instance(self) -> Iterator[WorldConfig]:
        self.made += 1
        n = self.made
        yield {"n": n}
        if n == 2:
            raise OSError("cannot drop instance 2")


def test_a_failed_destruction_is_raised_by_the_next_request() -> None:
    supply = InstanceSupply(_FailingDrop())
    try:
        with supply.instance():
            pass
        with supply.instance() as config:
            assert config == {"n": 2}
        with pytest.raises(OSError, match="cannot drop instance 2"):
            for _ in range(50):  # the destruction runs in the worker: raised once it has run
                with supply.instance():
                    pass
    finally:
        supply.close()


def test_a_failed_destruction_of_the_instance_made_ahead_is_raised_by_close() -> None:
    """The instance provisioned for a test that never came is destroyed by close(), and its failure is not hidden."""
    sandbox = _FailingDrop()
    supply = InstanceSupply(sandbox)
    with supply.instance() as config:
        assert config == {"n": 1}  # instance 2, which cannot be dropped, is made ahead meanwhile
    with pytest.raises(OSError, match="cannot drop instance 2"):
        supply.close()
    assert sandbox.made == 2
