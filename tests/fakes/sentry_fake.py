"""A Sentry stand-in: receives the SDK's envelopes over real HTTP and keeps them for assertions.

The SDK posts to `<scheme>://<host>/api/<project>/envelope/`, gzip-compressed, with the key
in `X-Sentry-Auth`. An envelope is newline-separated JSON: a header, then for each item an
item header and its payload. `SentryFake.dsn` is the DSN to set as SENTRY_DSN.
"""

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.serving import serve_in_thread

PUBLIC_KEY = "0123456789abcdef0123456789abcdef"
PROJECT_ID = "42"


@dataclass
class Envelope:
    """One envelope as it arrived: the raw (decompressed) text, and its parsed items."""

    raw: str
    items: list[tuple[dict[str, Any], Any]]

    def events(self) -> list[dict[str, Any]]:
        """The error events it carries."""
        return [payload for header, payload in self.items if header.get("type") == "event"]


@dataclass
class SentryFake:
    """The stand-in's state: every envelope received, in order."""

    base_url: str = ""
    envelopes: list[Envelope] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dsn(self) -> str:
        """The DSN that points the SDK here."""
        host = self.base_url.removeprefix("http://")
        return f"http://{PUBLIC_KEY}@{host}/{PROJECT_ID}"

    def events(self) -> list[dict[str, Any]]:
        """Every error event received so far."""
        with self._lock:
            return [event for envelope in self.envelopes for event in envelope.events()]

    def raw(self) -> str:
        """Everything received, as text: to check what must never leave."""
        with self._lock:
            return "\n".join(envelope.raw for envelope in self.envelopes)

    def reset(self) -> None:
        with self._lock:
            self.envelopes.clear()

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route(f"/api/{PROJECT_ID}/envelope/", self._envelope, methods=["POST"])]
        )

    async def _envelope(self, request: Request) -> Response:
        if f"sentry_key={PUBLIC_KEY}" not in request.headers.get("x-sentry-auth", ""):
            return Response(status_code=401)
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        text = body.decode()
        with self._lock:
            self.envelopes.append(Envelope(raw=text, items=_items(text)))
        return Response(status_code=200)


def _items(text: str) -> list[tuple[dict[str, Any], Any]]:
    lines = text.split("\n")[1:]  # the first line is the envelope's header
    items = []
    for header_line, payload_line in zip(lines[::2], lines[1::2], strict=False):
        if header_line:
            items.append((json.loads(header_line), json.loads(payload_line)))
    return items


@contextmanager
def running_sentry() -> Iterator[SentryFake]:
    """Serve a stand-in on a free port of 127.0.0.1 for the block."""
    fake = SentryFake()
    with serve_in_thread(fake.app(), "Sentry") as base_url:
        fake.base_url = base_url
        yield fake
