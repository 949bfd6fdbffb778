"""``worlds inspect WORLD RUN_ID``: what happened to one run, from its event log and entities.

The event log is the truth of a run, so the timeline is its events with the
time between them; steps, hooks, waits and streams are listed beside it so an
operator sees at once what is pending, retrying or still open. Waits have no
read API in the contract, so they are rebuilt from ``wait_*`` events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .models import Event, Pagination
from .operating import PAGE, every
from .protocols import World


async def run_timeline(world: World, run_id: str) -> dict[str, Any]:
    """The run, its timeline and its children as JSON-ready data; a miss raises the World's not-found error."""
    run = await world.runs.get(run_id, resolve_data="none")
    events: list[Event] = await every(
        await world.events.list(run_id, pagination=PAGE, resolve_data="all"),
        lambda p: world.events.list(run_id, pagination=p, resolve_data="all"),
    )
    steps = await every(
        await world.steps.list(run_id, pagination=Pagination(limit=1000, sort_order="asc")),
        lambda p: world.steps.list(run_id, pagination=Pagination(limit=1000, cursor=p.cursor, sort_order="asc")),
    )
    hooks = await every(
        await world.hooks.list(run_id=run_id, pagination=PAGE, resolve_data="none"),
        lambda p: world.hooks.list(run_id=run_id, pagination=p, resolve_data="none"),
    )
    streams = []
    for name in await world.list_streams_by_run_id(run_id):
        info = await world.get_stream_info(name, run_id)
        streams.append({"name": name, "chunks": info.tail_index + 1, "done": info.done})
    timeline: list[dict[str, Any]] = []
    previous: datetime | None = None
    waits: dict[str, dict[str, Any]] = {}
    for e in events:
        delta = None if previous is None else (e.created_at - previous).total_seconds()
        previous = e.created_at
        timeline.append(
            {"event": e.event_type, "at": _iso(e.created_at), "delta_s": delta, "correlation_id": e.correlation_id}
        )
        if e.event_type == "wait_created" and e.correlation_id is not None:
            resume = (e.event_data or {}).get("resume_at")
            waits[e.correlation_id] = {"wait_id": e.correlation_id, "status": "waiting", "resume_at": _iso(resume)}
        elif e.event_type == "wait_completed" and e.correlation_id in waits:
            waits[e.correlation_id]["status"] = "completed"
    return {
        "run": {
            "run_id": run.run_id,
            "workflow_name": run.workflow_name,
            "status": run.status,
            "deployment_id": run.deployment_id,
            "created_at": _iso(run.created_at),
            "started_at": _iso(run.started_at),
            "completed_at": _iso(run.completed_at),
        },
        "timeline": timeline,
        "steps": [
            {
                "step_id": s.step_id,
                "step_name": s.step_name,
                "status": s.status,
                "attempt": s.attempt,
                "error": s.error.message if s.error is not None else None,
                "retry_after": _iso(s.retry_after),
            }
            for s in steps
        ],
        "hooks": [{"hook_id": h.hook_id, "token": h.token, "is_webhook": h.is_webhook} for h in hooks],
        "waits": list(waits.values()),
        "streams": streams,
    }


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else None


def render(report: dict[str, Any]) -> str:
    """The timeline as a readable table, the run's children below it."""
    run = report["run"]
    lines = [
        f"run {run['run_id']}  {run['workflow_name']}  {run['status']}  (deployment {run['deployment_id']})",
        f"created {run['created_at']}  started {run['started_at'] or '-'}  completed {run['completed_at'] or '-'}",
        "",
        f"{'time':32}  {'delta':>9}  {'event':16}  correlation",
    ]
    for row in report["timeline"]:
        delta = "" if row["delta_s"] is None else f"+{row['delta_s']:.3f}s"
        lines.append(f"{row['at']:32}  {delta:>9}  {row['event']:16}  {row['correlation_id'] or ''}")
    sections = [
        ("steps", ["step_id", "step_name", "status", "attempt", "error", "retry_after"]),
        ("hooks", ["hook_id", "token", "is_webhook"]),
        ("waits", ["wait_id", "status", "resume_at"]),
        ("streams", ["name", "chunks", "done"]),
    ]
    for name, columns in sections:
        rows = report[name]
        lines += ["", f"{name}: {len(rows)}"]
        lines += ["  " + "  ".join(f"{c}={row[c]}" for c in columns if row[c] is not None) for row in rows]
    return "\n".join(lines)
