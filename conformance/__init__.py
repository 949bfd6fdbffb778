"""conformance: the World conformance suite as a pytest plugin.

Run it with ``pytest --world=<id|package|module:attr>`` or ``worlds test <world>``.
"""

from .harness import WorldContext, WorldHarness
from .markers import observes, pins, requires, spec

__all__ = ["WorldContext", "WorldHarness", "observes", "pins", "requires", "spec"]
