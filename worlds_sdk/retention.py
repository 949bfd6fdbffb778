"""``worlds gc WORLD --completed-before DURATION``: retention through the inspection surface (OP-4).

Deletes in bounded batches, one transaction each, so it can run beside a World
in use, stop at any point without leaving half a run, and show progress.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .protocols import InspectableWorld


async def collect(
    inspection: InspectableWorld, cutoff: datetime, *, batch_size: int, progress: Callable[[int], None]
) -> int:
    """Delete every terminal run completed before ``cutoff``; ``progress(total)`` after each batch."""
    total = 0
    while deleted := await inspection.delete_expired_runs(cutoff, batch_size=batch_size):
        total += deleted
        progress(total)
    return total
