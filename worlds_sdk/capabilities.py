"""The capability vocabulary a World declares and the conformance suite checks.

A capability is a promise beyond the baseline contract. Tests that need one
declare it; a World that does not declare it has those tests skipped (except in
a certification run, where a MUST rule's test may never be skipped).
"""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    MULTI_PROCESS = "multi_process"
    """Several OS processes may open the same World at once and see one state."""

    DURABLE_QUEUE = "durable_queue"
    """Accepted messages survive a World restart and a consumer killed with SIGKILL."""

    EFFECTIVELY_ONCE_DELIVERY = "effectively_once_delivery"
    """No acknowledged message is ever delivered again (duplicates are a failure)."""

    DELAYED_DELIVERY = "delayed_delivery"
    """``delay_seconds`` is honoured: a message is not delivered before its time."""

    LIVE_STREAMS = "live_streams"
    """A reader in another process sees chunks as they are written."""

    ENCRYPTION = "encryption"
    """``get_encryption_key_for_run`` returns a stable 32-byte key per run."""

    LEGACY_SPEC_1 = "legacy_spec_1"
    """Runs of spec version 1 (JSON payloads instead of bytes) are accepted."""

    CRASH_SAFE = "crash_safe"
    """A process killed at any instant leaves every event whole or absent."""

    INSPECTION = "inspection"
    """The World implements :class:`~worlds_sdk.protocols.InspectableWorld` (queue statistics,
    dead letters, retention) and keeps rules OP-1 to OP-4."""


class Observation(StrEnum):
    """Something a test reads off a World that a backend may be unable to show the suite.

    Not a promise of the World but a limit of the way it is reached: a bridge to
    another language whose API does not carry the value. A backend names such
    limits in ``WorldBackend.unobservable`` with the reason; the tests that
    read the value are then skipped with it, never failed on the World's account.
    """

    MESSAGE_DEPLOYMENT_ID = "message_deployment_id"
    """``MessageMeta.deployment_id`` of a delivery (QO-2, Q-6)."""
    SECOND_CLIENT = "second_client"
    """A second World object opened on the same instance in the same process (EV-1's second reader):
    an in-memory World reached through a bridge has one process, and so one memory, per World object."""


def parse_capabilities(names: object, *, where: str = "capabilities") -> frozenset[Capability]:
    """Capabilities from a list of names; an unknown name is an error, never ignored."""
    if not isinstance(names, (list, tuple, set, frozenset)):
        raise ValueError(f"{where}: expected a list of capability names")
    known = {c.value for c in Capability}
    unknown = sorted(str(n) for n in names if n not in known)
    if unknown:
        raise ValueError(f"{where}: unknown capabilities {unknown}; known: {sorted(known)}")
    return frozenset(Capability(n) for n in names)
