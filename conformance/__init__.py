"""conformance: the World conformance suite as a pytest plugin.

Run it with ``pytest --world=<id|package|module:attr>`` or ``worlds test <world>``.

The names below are imported on first use: the fork server of the suite's child
processes (``python -m conformance.forkserver``) imports this package too, and
needs neither pytest nor the harness.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .harness import WorldContext, WorldHarness
    from .markers import observes, pins, requires, spec

__all__ = ["WorldContext", "WorldHarness", "observes", "pins", "requires", "spec"]

_HOMES = {
    "WorldContext": ".harness",
    "WorldHarness": ".harness",
    "observes": ".markers",
    "pins": ".markers",
    "requires": ".markers",
    "spec": ".markers",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home, __name__), name)
