"""Read whole lists through pagination, and check event/entity consistency (EV-1)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from worlds_sdk.models import ChunkPage, Event, Page, Pagination, Run, SortOrder, Step, StreamChunk
from worlds_sdk.protocols import World

T = TypeVar("T")
RUN_END = {"run_completed": "completed", "run_failed": "failed", "run_cancelled": "cancelled"}


async def collect(
    fetch: Callable[[Pagination], Awaitable[Page[T]]], *, limit: int = 100, sort_order: SortOrder | None = None
) -> list[T]:
    """Every item of a paginated list, following cursors; fails on a cursor loop.

    ``limit`` is an upper bound (docs/spec.md §1): a page may hold fewer items and
    still have more after it, so a whole list is only ever read by following cursors.
    """
    items, _ = await read_to_end(fetch, limit=limit, sort_order=sort_order)
    return items


async def read_to_end(
    fetch: Callable[[Pagination], Awaitable[Page[T]]],
    *,
    cursor: str | None = None,
    limit: int = 100,
    sort_order: SortOrder | None = None,
) -> tuple[list[T], str | None]:
    """The items after ``cursor`` up to the end of the list, and the cursor of the last page.

    Fails on a page larger than ``limit`` (a World ignoring it) and on a cursor that
    comes back (a World ignoring it: the same page again and again).
    """
    items: list[T] = []
    seen = {cursor}
    while True:
        page = await fetch(Pagination(limit=limit, cursor=cursor, sort_order=sort_order))
        assert len(page.data) <= limit, f"a page of {len(page.data)} items for limit={limit}"
        items.extend(page.data)
        if not page.has_more:
            return items, page.cursor
        assert page.cursor is not None, "has_more=True needs a cursor"
        assert page.cursor not in seen, f"cursor {page.cursor!r} came back: the list does not advance"
        seen.add(page.cursor)
        cursor = page.cursor


async def chunk_pages(world: World, name: str, run_id: str, *, limit: int = 1000) -> list[ChunkPage]:
    """The pages of a stream through ``get_stream_chunks``, following cursors (pages may be short)."""
    pages: list[ChunkPage] = []
    cursor: str | None = None
    seen = {cursor}
    while True:
        page = await world.get_stream_chunks(name, run_id, limit=limit, cursor=cursor)
        assert len(page.data) <= limit, f"a page of {len(page.data)} chunks for limit={limit}"
        pages.append(page)
        if not page.has_more:
            return pages
        assert page.cursor is not None, "has_more=True needs a cursor"
        assert page.cursor not in seen, f"cursor {page.cursor!r} came back: the stream does not advance"
        seen.add(page.cursor)
        cursor = page.cursor


async def all_chunks(world: World, name: str, run_id: str, *, limit: int = 1000) -> list[StreamChunk]:
    """Every chunk of a stream, read page by page."""
    return [chunk for page in await chunk_pages(world, name, run_id, limit=limit) for chunk in page.data]


async def read_stream(world: World, name: str, start_index: int = 0) -> list[bytes]:
    """Every chunk ``read_from_stream`` yields until the stream is closed."""
    return [chunk async for chunk in world.read_from_stream(name, start_index)]


async def all_events(world: World, run_id: str) -> list[Event]:
    return await collect(lambda p: world.events.list(run_id, pagination=p))


async def all_steps(world: World, run_id: str) -> list[Step]:
    return await collect(lambda p: world.steps.list(run_id, pagination=p))


async def all_runs(world: World) -> list[Run]:
    return await collect(lambda p: world.runs.list(pagination=p))


def events_imply_entities(events: Sequence[Event], steps: Sequence[Step], run: Run | None) -> list[str]:
    """Events read FIRST, entities after: every event's change must be visible (EV-1)."""
    problems = []
    by_id = {s.step_id: s for s in steps}
    started = Counter(e.correlation_id for e in events if e.event_type == "step_started")
    for e in events:
        step = by_id.get(e.correlation_id or "")
        if e.event_type == "step_created" and step is None:
            problems.append(f"step_created {e.correlation_id} has no step")
        final = {"step_completed": "completed", "step_failed": "failed"}.get(e.event_type)
        if final is not None and (step is None or step.status != final):  # terminal states never change
            problems.append(f"{e.event_type} {e.correlation_id} but step is {step and step.status}")
    for step_id, n in started.items():
        step = by_id.get(step_id or "")
        if step is None or step.attempt < n:
            problems.append(f"{n} step_started for {step_id} but attempt {step and step.attempt}")
    if run is not None and any(e.event_type == "run_started" for e in events) and run.status == "pending":
        problems.append("run_started appended but run still pending")
    ended = [RUN_END[e.event_type] for e in events if e.event_type in RUN_END]
    if run is not None and ended and run.status != ended[0]:
        problems.append(f"{ended[0]} event appended but run is {run.status}")
    return problems


def entities_imply_events(steps: Sequence[Step], run: Run | None, events: Sequence[Event]) -> list[str]:
    """Entities read FIRST, events after: every entity change must have its event (EV-1)."""
    problems = []
    kinds = {(e.event_type, e.correlation_id) for e in events}
    started = Counter(e.correlation_id for e in events if e.event_type == "step_started")
    for s in steps:
        if ("step_created", s.step_id) not in kinds:
            problems.append(f"step {s.step_id} without step_created")
        if s.status == "completed" and ("step_completed", s.step_id) not in kinds:
            problems.append(f"step {s.step_id} completed without step_completed")
        if s.attempt > started[s.step_id]:
            problems.append(f"step {s.step_id} attempt {s.attempt} > {started[s.step_id]} step_started events")
    if run is not None and run.status == "running" and not any(e.event_type == "run_started" for e in events):
        problems.append("run running without run_started")
    if run is not None and run.status in RUN_END.values() and f"run_{run.status}" not in {e.event_type for e in events}:
        problems.append(f"run {run.status} without its run_{run.status} event")
    for s in steps:
        if s.status == "failed" and ("step_failed", s.step_id) not in kinds:
            problems.append(f"step {s.step_id} failed without step_failed")
    return problems
