"""Hypothesis profiles for the suite: ``default``, ``ci`` (derandomised, bounded), ``nightly``,
and ``quick`` (``ci`` without shrinking).

Chosen with hypothesis's own ``--hypothesis-profile`` option or the environment
variable ``WORLDS_HYPOTHESIS_PROFILE``. They are registered only when a World is
under test, so the plugin changes nothing in other projects' runs. Deadlines are
off everywhere: a World's latency is measured by benchmarks, never by a test
timing out an example.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

ENV_VAR = "WORLDS_HYPOTHESIS_PROFILE"
PROFILES = ("default", "ci", "nightly", "quick")


def register_and_load(choice: str | None, *, certify: bool = False) -> str:
    """Register the profiles and load the chosen one; returns its name.

    The choice is the option, else ``$WORLDS_HYPOTHESIS_PROFILE``, else ``ci`` in a CI
    environment or a certification run (reproducible verdicts), else ``default``.
    """
    common = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }
    settings.register_profile("default", max_examples=12, stateful_step_count=25, **common)
    settings.register_profile(
        "ci", max_examples=10, stateful_step_count=25, derandomize=True, print_blob=True, database=None, **common
    )
    settings.register_profile("nightly", max_examples=300, stateful_step_count=80, **common)
    # ci without shrinking: for runs that only need to know *whether* a check fails (the mutant meta-tests).
    settings.register_profile(
        "quick", parent=settings.get_profile("ci"), phases=[Phase.explicit, Phase.reuse, Phase.generate]
    )
    name = choice or os.environ.get(ENV_VAR) or ("ci" if certify or os.environ.get("CI") else "default")
    if name not in PROFILES:
        raise ValueError(f"unknown hypothesis profile {name!r}; choose one of {', '.join(PROFILES)}")
    settings.load_profile(name)
    if name in ("default", "ci"):
        _cap_shrinking(SHRINK_SECONDS)
    return name


SHRINK_SECONDS = 60
"""How long hypothesis may shrink one failing test in ``default`` and ``ci``."""


def _cap_shrinking(seconds: int) -> None:
    """Hypothesis shrinks a failing example for up to 300 s, a limit that is a module constant
    (``engine.MAX_SHRINKING_SECONDS``), not a setting. Against a World behind a network or
    the Node bridge each shrink step costs round trips: one failing test of
    ``@workflow/world-postgres`` shrank for the whole 300 s, a third of the default profile's
    run. A minute still ends at a small example; ``nightly`` keeps hypothesis's own limit.
    """
    from hypothesis.internal.conjecture import engine

    if not hasattr(engine, "MAX_SHRINKING_SECONDS"):  # a hypothesis without it: its own limit applies
        return
    engine.MAX_SHRINKING_SECONDS = seconds
