"""The live-read loop of a stream, shared by every World that stores chunks itself.

``read_from_stream`` (SPEC §5, ST-1) yields the chunks already written, then new
ones as they arrive, and ends once the stream is closed and every chunk has been
yielded. The loop is the same whatever stores the chunks, so it lives here; a
World implements :class:`ChunkSource` (one consistent read) and passes an
optional wake-up hint (an in-process signal, a ``NOTIFY``). Polling at a short
interval is always kept, so a writer in another process is seen without any
signal, and correctness never depends on one.

Example::

    def read_from_stream(self, name: str, start_index: int = 0) -> AsyncIterator[bytes]:
        return follow_stream(self._chunks, name, start_index, poll_interval=0.05, wakeup=self._signal.wait)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from .consumer import Wakeup
from .models import StreamChunk


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSlice:
    """Chunks from one index on, with the stream's tail and done flag *read in the same snapshot*.

    The loop ends when ``done`` and it has yielded up to ``tail_index``; reading
    ``done`` in a later snapshot than the chunks could end a reader before the
    last chunks written just ahead of the close.
    """

    chunks: Sequence[StreamChunk]
    tail_index: int
    done: bool


class ChunkSource(Protocol):
    async def read_slice(self, name: str, start_index: int, limit: int) -> StreamSlice:
        """At most ``limit`` consecutive chunks with index >= ``start_index``; an unknown stream is empty."""
        ...


async def follow_stream(
    source: ChunkSource,
    name: str,
    start_index: int = 0,
    *,
    poll_interval: float = 0.1,
    page_size: int = 100,
    wakeup: Wakeup | None = None,
) -> AsyncIterator[bytes]:
    """Yield the data of stream ``name`` from ``start_index``: existing chunks, then live ones, until closed.

    A negative ``start_index`` counts from the end as it is when reading begins
    (``-1`` is the last chunk written so far), clamped at 0.
    """
    if start_index < 0:
        first = await source.read_slice(name, 0, 0)
        start_index = max(0, first.tail_index + 1 + start_index)
    next_index = start_index
    while True:
        page = await source.read_slice(name, next_index, page_size)
        for chunk in page.chunks:
            yield chunk.data
            next_index = chunk.index + 1
        if page.done and next_index > page.tail_index:
            return
        if not page.chunks:
            await _pause(poll_interval, wakeup)


async def _pause(poll_interval: float, wakeup: Wakeup | None) -> None:
    if wakeup is None:
        await asyncio.sleep(poll_interval)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wakeup(poll_interval), timeout=poll_interval)
