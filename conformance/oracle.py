"""The suite's model of a World: the SDK's pure rules applied to in-memory state.

The model-based tests drive a World and this oracle side by side and compare
every outcome. The oracle is trusted because ``worlds_sdk.rules`` is pinned to
the spec's rule table by the project's own table-driven tests.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime
from typing import Any

from worlds_sdk import rules
from worlds_sdk.models import Event, EventRequest, Hook, Run, Step, Wait


class Oracle:
    def __init__(self, world_spec_version: int) -> None:
        self.world_spec_version = world_spec_version
        self.runs: dict[str, Run] = {}
        self.steps: dict[tuple[str, str], Step] = {}
        self.hooks: dict[str, Hook] = {}
        self.disposed: dict[str, Hook] = {}
        self.waits: dict[tuple[str, str], Wait] = {}
        self.events: dict[str, list[Event]] = defaultdict(list)

    def snapshot(self, run_id: str, request: EventRequest) -> rules.Snapshot:
        corr = request.correlation_id or ""
        token = rules.requested_token(request)
        holder = next((h for h in self.hooks.values() if h.token == token), None) if token else None
        return rules.Snapshot(
            run=self.runs.get(run_id),
            step=self.steps.get((run_id, corr)),
            hook=self.hooks.get(corr) or self.disposed.get(corr),
            hook_disposed=corr in self.disposed,
            token_holder=holder,
            wait=self.waits.get((run_id, corr)),
        )

    def apply(self, run_id: str, request: EventRequest, now: datetime) -> rules.Effects:
        """Decide and apply; raises the typed error the World must raise too."""
        effects = rules.decide(
            run_id, request, self.snapshot(run_id, request), now=now, world_spec_version=self.world_spec_version
        )
        self.events[run_id].extend(effects.events)
        if effects.run is not None:
            self.runs[run_id] = effects.run
        if effects.step is not None:
            self.steps[(run_id, effects.step.step_id)] = effects.step
        if effects.hook is not None:
            self.hooks[effects.hook.hook_id] = effects.hook
        if effects.wait is not None:
            self.waits[(run_id, effects.wait.wait_id)] = effects.wait
        if effects.disposed_hook_id is not None:
            self.disposed[effects.disposed_hook_id] = self.hooks.pop(effects.disposed_hook_id)
        if effects.dispose_run_children:
            for hook_id in [h for h, hook in self.hooks.items() if hook.run_id == run_id]:
                self.disposed[hook_id] = self.hooks.pop(hook_id)
            for key in [k for k in self.waits if k[0] == run_id]:
                del self.waits[key]
        return effects


_CLOCK_FIELDS = {"created_at", "updated_at", "started_at", "completed_at"}


def comparable(entity: Any) -> Any:
    """An entity with its clock fields reduced to "set or not" (their values depend on the clock)."""
    if entity is None:
        return None
    return {
        k: (v is not None) if k in _CLOCK_FIELDS else v
        for k, v in dataclasses.asdict(entity).items()
        if k != "event_id"
    }
