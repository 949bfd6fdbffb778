"""``worlds doctor WORLD``: what needs an operator's attention, with thresholds as settings.

Each check yields findings; any finding makes the command exit non-zero, so a
cron job or a CI step can alert on it. A World that cannot be opened because
its stored format or schema is of another version is itself a finding.

A stuck run is judged from the queue statistics: a ``pending`` or ``running``
run, unchanged for ``stuck_after``, whose workflow queue holds no message at
all (ready, leased or delayed) has nothing that will ever advance it; it needs
recovery (``start()`` re-enqueues it, Q-6). A run whose workflow queue holds
other runs' messages is not reported, since the surface does not expose which
run a message is for: the check can miss a stuck run, never invent one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .models import Run, Step
from .operating import PAGE, every
from .protocols import InspectableWorld, World
from .queue_names import workflow_queue


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    stuck_after: float = 300.0
    """Seconds a live run may go unchanged with no message before it is reported stuck."""
    max_failures: int = 3
    """A live message that failed (handler error or expired lease) this many times is reported."""
    max_ready_age: float = 60.0
    """A ready message older than this many seconds means consumers are behind or absent."""
    retry_grace: float = 60.0
    """A step still pending this many seconds after its ``retry_after`` was never restarted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    check: str
    subject: str
    detail: str


async def examine(world: World, inspection: InspectableWorld, limits: Thresholds) -> dict[str, Any]:
    """Every finding and the figures they come from, as JSON-ready data."""
    now = datetime.now(UTC)
    stats = list(await inspection.queue_stats())
    by_queue = {s.queue_name: s for s in stats}
    findings: list[Finding] = []
    live: list[Run] = []
    for status in ("pending", "running"):
        live += await every(
            await world.runs.list(status=status, pagination=PAGE, resolve_data="none"),
            lambda p, status=status: world.runs.list(status=status, pagination=p, resolve_data="none"),
        )
    for run in live:
        queue = by_queue.get(workflow_queue(run.workflow_name))
        queued = 0 if queue is None else queue.ready + queue.leased + queue.delayed
        idle = (now - run.updated_at).total_seconds()
        if queued == 0 and idle >= limits.stuck_after:
            findings.append(
                Finding(check="stuck_run", subject=run.run_id, detail=f"{run.status} for {idle:.0f}s, no message")
            )
        steps: list[Step] = await every(
            await world.steps.list(run.run_id, pagination=PAGE, resolve_data="none"),
            lambda p, run_id=run.run_id: world.steps.list(run_id, pagination=p, resolve_data="none"),
        )
        for step in steps:
            due = step.retry_after
            if step.status == "pending" and due is not None and now - due >= timedelta(seconds=limits.retry_grace):
                findings.append(
                    Finding(
                        check="retry_overdue",
                        subject=f"{run.run_id}/{step.step_id}",
                        detail=f"retry_after {due.isoformat()} passed {(now - due).total_seconds():.0f}s ago",
                    )
                )
    for s in stats:
        if s.dead_letters:
            findings.append(
                Finding(check="dead_letters", subject=s.queue_name, detail=f"{s.dead_letters}, last: {s.last_error}")
            )
        if s.max_failures >= limits.max_failures:
            findings.append(
                Finding(check="repeated_failures", subject=s.queue_name, detail=f"a message failed {s.max_failures}x")
            )
        if s.oldest_ready_seconds is not None and s.oldest_ready_seconds >= limits.max_ready_age:
            findings.append(
                Finding(check="old_ready", subject=s.queue_name, detail=f"oldest ready {s.oldest_ready_seconds:.0f}s")
            )
    return {
        "healthy": not findings,
        "thresholds": asdict(limits),
        "live_runs": len(live),
        "queues": [asdict(s) for s in stats],
        "findings": [asdict(f) for f in findings],
    }


def unopenable(error: Exception) -> dict[str, Any]:
    """The report for a World that refused to open (another format or schema version)."""
    finding = Finding(check="version", subject="world", detail=f"{type(error).__name__}: {error}")
    return {"healthy": False, "findings": [asdict(finding)], "queues": [], "live_runs": None}


def render(report: dict[str, Any]) -> str:
    lines = []
    if report["queues"]:
        lines.append(f"{'queue':40} {'ready':>6} {'leased':>6} {'delayed':>7} {'oldest':>8} {'maxfail':>7} {'dead':>5}")
        for q in report["queues"]:
            oldest = "-" if q["oldest_ready_seconds"] is None else f"{q['oldest_ready_seconds']:.1f}s"
            lines.append(
                f"{q['queue_name']:40} {q['ready']:>6} {q['leased']:>6} {q['delayed']:>7} {oldest:>8}"
                f" {q['max_failures']:>7} {q['dead_letters']:>5}"
            )
        lines.append("")
    if report["live_runs"] is not None:
        lines.append(f"live runs: {report['live_runs']}")
    if report["healthy"]:
        lines.append("healthy: nothing needs attention")
    else:
        lines.append(f"needs attention: {len(report['findings'])} finding(s)")
        lines += [f"  {f['check']:18} {f['subject']}  {f['detail']}" for f in report["findings"]]
    return "\n".join(lines)
