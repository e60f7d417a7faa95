"""A tiny asyncio TCP proxy a test controls: forward, refuse, black-hole, answer as a full Postgres, or cut a
connection at a given write.

It stands between the app and the shared Postgres so a test can make *its* database unreachable without touching
anyone else's.
"""

import asyncio
import contextlib
import struct
from typing import Literal

Mode = Literal["forward", "refuse", "blackhole", "full"]

_NEGOTIATIONS = (
    80877103,
    80877104,
)  # SSLRequest, GSSENCRequest: answered "N", then the startup message
# What Postgres answers a new connection once every slot is taken (max_connections): FATAL 53300.
_TOO_MANY_CLIENTS = (
    b"".join(
        kind + text + b"\0"
        for kind, text in (
            (b"S", b"FATAL"),
            (b"V", b"FATAL"),
            (b"C", b"53300"),
            (b"M", b"sorry, too many clients already"),
        )
    )
    + b"\0"
)


class TcpProxy:
    """Listens on a free loopback port and forwards to ``target``, as ``mode`` says."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.mode: Mode = "forward"
        # Bytes that, seen in what the client sends, make the proxy drop that message and sever (once).
        self.cut_on: bytes | None = None
        self.cuts = 0
        self.port = 0

    async def start(self) -> None:
        """Start listening (on the same port again after ``stop``)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        self.sever()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def sever(self) -> None:
        """Drop every open connection (each side sees its peer vanish)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if self.mode == "refuse":
                return
            if self.mode == "blackhole":
                await asyncio.sleep(3600)
                return
            if self.mode == "full":
                await _answer_too_many_clients(reader, writer)
                return
            up_reader, up_writer = await asyncio.open_connection(*self._target)
            self._writers.add(up_writer)
            await asyncio.gather(
                self._pipe(reader, up_writer, client_side=True),
                self._pipe(up_reader, writer, client_side=False),
            )
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client_side: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if client_side and self.cut_on is not None and self.cut_on in data:
                    # The write never reaches the server: it dies with the connection.
                    self.cut_on = None
                    self.cuts += 1
                    self.sever()
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()


async def _answer_too_many_clients(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Play a Postgres server out of connection slots: refuse encryption, read the startup, send the error."""
    while True:
        length, code = struct.unpack("!ii", await reader.readexactly(8))
        if code not in _NEGOTIATIONS:
            await reader.readexactly(length - 8)  # the rest of the startup message
            break
        writer.write(b"N")
        await writer.drain()
    writer.write(
        b"E" + struct.pack("!i", 4 + len(_TOO_MANY_CLIENTS)) + _TOO_MANY_CLIENTS
    )
    await writer.drain()
