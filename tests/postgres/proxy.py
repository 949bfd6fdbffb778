"""A TCP proxy in front of PostgreSQL that loses the reply to one chosen statement.

The fault it makes is the one a retry after a lost connection must survive: the
server ran the statement and committed it, then the connection ended before the
reply reached the client. Timing a real ``pg_terminate_backend`` into that window
is a matter of luck; the proxy hits it every time. It forwards everything until
:meth:`Proxy.cut_reply` is armed with a marker; the next client message carrying
the marker (e.g. an id in a statement's parameters) goes to the server, and the
server's reply is held back up to its ``ReadyForQuery`` -- by then the
autocommit statement has committed. Instead of the reply the client gets what it
would see had the server ended the backend at that moment: the FATAL
``57P01 admin_shutdown`` error, then a closed socket (``fatal=False``: only the
closed socket, as after a network failure).

The backend protocol is parsed only far enough to find message boundaries, so
the URL must turn SSL and GSS encryption off (:meth:`Proxy.url`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from psycopg.conninfo import conninfo_to_dict, make_conninfo

ADMIN_SHUTDOWN = b"".join(
    [b"SFATAL\0", b"VFATAL\0", b"C57P01\0", b"Mterminating connection due to administrator command\0", b"\0"]
)
"""The fields of the ErrorResponse a backend sends when ``pg_terminate_backend`` ends it."""


class Proxy:
    """Listens on 127.0.0.1 and forwards each client connection to the server at ``upstream``."""

    def __init__(self, upstream: str, *, fatal: bool = True) -> None:
        self.upstream = {key: str(value) for key, value in conninfo_to_dict(upstream).items() if value is not None}
        self.fatal = fatal
        self._server: asyncio.Server | None = None
        self._marker: bytes | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.cuts = 0

    def url(self) -> str:
        """The upstream URL, pointed at the proxy, without SSL or GSS encryption."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return make_conninfo(
            "",
            **{**self.upstream, "host": "127.0.0.1", "port": str(port), "sslmode": "disable", "gssencmode": "disable"},
        )

    def cut_reply(self, marker: str) -> None:
        """Lose the reply to the next statement whose message carries ``marker`` (once)."""
        self._marker = marker.encode()

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        server_in, server_out = await asyncio.open_connection(self.upstream["host"], int(self.upstream["port"]))
        cut = asyncio.Event()

        async def to_server() -> None:
            while data := await client_in.read(65536):
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    cut.set()
                server_out.write(data)
                await server_out.drain()

        async def to_client() -> None:
            buffer = b""
            while data := await server_in.read(65536):
                buffer += data
                while len(buffer) >= 5 and len(buffer) >= 1 + (size := int.from_bytes(buffer[1:5], "big")):
                    message, buffer = buffer[: 1 + size], buffer[1 + size :]
                    if not cut.is_set():
                        client_out.write(message)
                    elif message[:1] == b"Z":  # ReadyForQuery: the statement has committed
                        self.cuts += 1
                        if self.fatal:
                            client_out.write(b"E" + (4 + len(ADMIN_SHUTDOWN)).to_bytes(4, "big") + ADMIN_SHUTDOWN)
                            await client_out.drain()
                        return
                await client_out.drain()

        pumps = [asyncio.ensure_future(to_server()), asyncio.ensure_future(to_client())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in (client_out, server_out):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Proxy]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self._server.close()
            await asyncio.gather(*self._connections)  # the clients have closed: let each pump finish
