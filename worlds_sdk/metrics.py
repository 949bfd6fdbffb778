"""``worlds metrics WORLD``: the queue statistics and live runs as Prometheus text, once or served.

These are figures of the World's *state*, read through the inspection surface,
so any process may expose them -- a sidecar beside the workers. Figures of
*calls* (``events.create`` latency, delivery latency, errors) exist only inside
the processes that make the calls: those come from :func:`worlds_sdk.instrument`
and the application's own OpenTelemetry exporter (Prometheus or OTLP).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from .models import Pagination
from .operating import every
from .protocols import InspectableWorld, World

_QUEUE_GAUGES = [
    ("ready", "worlds_queue_ready_messages", "Messages claimable now."),
    ("leased", "worlds_queue_leased_messages", "Messages under a live lease."),
    ("delayed", "worlds_queue_delayed_messages", "Messages visible later."),
    ("oldest_ready_seconds", "worlds_queue_oldest_ready_seconds", "Age of the oldest ready message."),
    ("max_failures", "worlds_queue_max_failures", "Most failures of any live message."),
    ("dead_letters", "worlds_queue_dead_letters", "Dead letters."),
]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def exposition(world: World, inspection: InspectableWorld) -> str:
    """Prometheus text format 0.0.4: one gauge family per figure, a sample per queue name."""
    stats = await inspection.queue_stats()
    lines = []
    for field, name, help_text in _QUEUE_GAUGES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for s in stats:
            value = getattr(s, field)
            if value is not None:
                lines.append(f'{name}{{queue="{_label(s.queue_name)}"}} {float(value):g}')
    lines += ["# HELP worlds_runs Runs that are not finished, by status.", "# TYPE worlds_runs gauge"]
    for status in ("pending", "running"):
        page = Pagination(limit=1000)
        runs = await every(
            await world.runs.list(status=status, pagination=page, resolve_data="none"),
            lambda p, status=status: world.runs.list(status=status, pagination=p, resolve_data="none"),
        )
        lines.append(f'worlds_runs{{status="{status}"}} {len(runs)}')
    return "\n".join(lines) + "\n"


async def serve(
    port: int,
    render: Callable[[], Awaitable[str]],
    healthy: Callable[[], Awaitable[None]],
    ready: Callable[[int], None],
) -> None:
    """Serve ``/metrics`` and ``/healthz`` on 127.0.0.1 until SIGTERM or cancelled; ``ready(port)`` once listening.

    One event loop serves every request, the loop the World was opened in, so a
    World bound to its loop (a connection pool) is used from that loop only.
    SIGTERM (what a container runtime or a service manager sends to stop a
    sidecar) returns normally, so the caller closes the World and exits 0;
    Ctrl-C cancels, as everywhere in ``worlds``.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode("latin-1").split()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = request[1] if len(request) > 1 else ""
            if path == "/metrics":
                status, body = "200 OK", await render()
            elif path == "/healthz":
                try:
                    await healthy()
                    status, body = "200 OK", "ok\n"
                except Exception as exc:
                    status, body = "503 Service Unavailable", f"{type(exc).__name__}: {exc}\n"
            else:
                status, body = "404 Not Found", "try /metrics or /healthz\n"
            data = body.encode()
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        finally:
            writer.close()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with await asyncio.start_server(handle, "127.0.0.1", port) as server:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        try:
            ready(server.sockets[0].getsockname()[1])
            await stop.wait()
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
