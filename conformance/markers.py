"""How a conformance test declares what it checks and what it needs.

Tests never branch on a backend's name. The rule a test checks, and whether the
rule is a MUST, SHOULD or MAY, are in its name (``test_HK1_token_unique__MUST``);
the capabilities and spec versions it needs are markers, and so are the read
parameters it shows honoured (``@pins("runs.list", "status")``)::

    @requires(Capability.MULTI_PROCESS)
    @spec(">=3")
    def test_HK1_token_unique_across_processes__MUST(world): ...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from worlds_sdk.capabilities import Capability, Observation

F = TypeVar("F", bound=Callable[..., Any])

_NAME = re.compile(r"^test_(?P<family>[A-Z]+)(?P<number>\d*)_\w*?__(?P<level>MUST|SHOULD|MAY)$")
_SPEC = re.compile(r"^\s*(>=|<=|==|>|<)?\s*(\d+)\s*$")


@dataclass(frozen=True)
class RuleRef:
    """The rule a test checks: ``EV-4`` and its level."""

    rule: str
    level: str


def rule_of(test_name: str) -> RuleRef | None:
    """The rule named in a test function's name, ignoring parametrisation ids."""
    m = _NAME.match(test_name.split("[", 1)[0])
    if not m:
        return None
    rule = f"{m['family']}-{m['number']}" if m["number"] else m["family"]
    return RuleRef(rule=rule, level=m["level"])


def requires(*capabilities: Capability | str) -> pytest.MarkDecorator:
    """Mark a test as needing capabilities; an unknown name fails at import, never silently."""
    caps = tuple(Capability(c) for c in capabilities)
    return pytest.mark.worlds_requires(*caps)


def observes(*observations: Observation | str) -> pytest.MarkDecorator:
    """Mark a test as reading values a backend may be unable to show (``WorldBackend.unobservable``)."""
    return pytest.mark.worlds_observes(*(Observation(o) for o in observations))


def pins(method: str, *parameters: str) -> pytest.MarkDecorator:
    """Declare that this MUST test fails when a World ignores ``parameters`` of the read method ``method``.

    ``method`` is named as a test calls it (``runs.list``, ``events.get``,
    ``get_stream_chunks``) and a pagination field as ``pagination.limit``. The
    project's meta-test reads these declarations from the suite's source and fails
    when a read parameter of ``worlds_sdk.protocols`` has no pinning test, so a
    parameter every test happens to pass but none checks cannot go unnoticed.
    """
    if not parameters:
        raise ValueError(f"pins({method!r}) names no parameter")
    return pytest.mark.worlds_pins(method, *parameters)


def spec(constraint: str) -> pytest.MarkDecorator:
    """Mark the spec versions a test applies to, e.g. ``">=3"`` or ``"==3"``."""
    if not _SPEC.match(constraint):
        raise ValueError(f"bad spec constraint {constraint!r}; use e.g. '>=3'")
    return pytest.mark.worlds_spec(constraint)


def spec_allows(constraint: str, version: int) -> bool:
    m = _SPEC.match(constraint)
    assert m is not None
    op, bound = m.group(1) or "==", int(m.group(2))
    return {
        ">=": version >= bound,
        "<=": version <= bound,
        "==": version == bound,
        ">": version > bound,
        "<": version < bound,
    }[op]
