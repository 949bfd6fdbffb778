"""The in-memory World every mutant breaks, now public as :mod:`worlds_sdk.memory`.

Kept as a thin import so ``tests.mutants.memory_world:memory`` and the mutants'
imports keep working.
"""

from worlds_sdk.memory import (
    CAPABILITIES,
    STATES,
    MemorySandbox,
    MemoryStore,
    MemoryWorld,
    Message,
    State,
    _Events,
    _Group,
    _Hooks,
    _Runs,
    _Steps,
    backend,
    memory,
    memory_sandbox,
    page,
)

__all__ = [
    "CAPABILITIES",
    "STATES",
    "MemorySandbox",
    "MemoryStore",
    "MemoryWorld",
    "Message",
    "State",
    "_Events",
    "_Group",
    "_Hooks",
    "_Runs",
    "_Steps",
    "backend",
    "memory",
    "memory_sandbox",
    "page",
]
