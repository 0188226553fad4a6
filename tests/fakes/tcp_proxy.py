"""A TCP proxy on 127.0.0.1 that tests put between the app and PostgreSQL to inject faults.

`TcpProxy(host, port)` forwards every connection to the upstream server, in a thread with an
event loop of its own (so a blocked or busy test loop cannot stall it by accident). The test
drives it with three calls, each finished when it returns:

- `kill()`: the database is down. Every open connection is reset (both sides) and new ones
  are refused (nothing listens on the port) until `restore()`.
- `stall()`: the network drops packets. Sockets stay open and new connections are accepted,
  but no byte moves either way; what was sent waits, as in a kernel retransmit queue.
- `restore()`: back to forwarding. After a stall the bytes that waited flow on, as they would
  once packets get through again; after a kill the port listens again.
"""

import asyncio
import socket
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self

CONTROL_TIMEOUT_SECONDS = 10.0
CHUNK_BYTES = 65536


class TcpProxy:
    """Forward 127.0.0.1:<port> to an upstream TCP server; kill, stall and restore it."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = _free_port()

    def __enter__(self) -> Self:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._call(self._shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT_SECONDS)
        self._loop.close()

    def kill(self) -> None:
        """Reset every connection and refuse new ones until `restore()`."""
        self._call(self._shut())

    def stall(self) -> None:
        """Keep connections open (and accept new ones) but move no byte until `restore()`."""
        self._call(self._stall())

    def restore(self) -> None:
        """Forward again: listen if killed, let waiting bytes through if stalled."""
        self._call(self._restore())

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CONTROL_TIMEOUT_SECONDS)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def _stall(self) -> None:
        if self._server is None:
            await self._start()
        assert self._flowing is not None
        self._flowing.clear()

    async def _restore(self) -> None:
        if self._server is None:
            await self._start()
        assert self._flowing is not None
        self._flowing.set()

    async def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # RST, as a crashed server's host would answer
        for link in list(self._links):
            link.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Link one client to a new upstream connection until either side ends or a kill."""
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        writers = [writer]
        self._writers.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
            writers.append(upstream_writer)
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        except (OSError, asyncio.CancelledError):
            pass  # upstream refused, or killed: a cancelled callback would be logged as an error
        finally:
            for each in writers:
                each.transport.abort()
                self._writers.discard(each)
            self._links.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy bytes one way while flowing; on EOF or a reset, end the whole link."""
        flowing = self._flowing
        assert flowing is not None
        try:
            while True:
                await flowing.wait()
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                await flowing.wait()  # a stall that began during the read holds these bytes
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        writer.transport.abort()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
