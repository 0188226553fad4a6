"""An OpenTelemetry collector stand-in: receives OTLP/HTTP trace exports (protobuf) for tests."""

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.serving import serve_in_thread


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    trace_id: str  # 32 hex digits, as in the logs
    attributes: dict[str, str]


@dataclass
class OtlpFake:
    """Every span exported to `/v1/traces`, with its resource's service.name."""

    base_url: str = ""
    spans: list[ExportedSpan] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/traces", self._export, methods=["POST"])])

    def named(self, name: str) -> list[ExportedSpan]:
        with self._lock:
            return [span for span in self.spans if span.name == name]

    async def _export(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        found = []
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: a.value.string_value for a in span.attributes}
                    found.append(
                        ExportedSpan(
                            resource.get("service.name", ""),
                            span.name,
                            span.trace_id.hex(),
                            attributes,
                        )
                    )
        with self._lock:
            self.spans += found
        answer = ExportTraceServiceResponse().SerializeToString()
        return Response(answer, media_type="application/x-protobuf")


@contextmanager
def running_collector() -> Iterator[OtlpFake]:
    """Serve a stand-in collector on a free port of 127.0.0.1 for the block."""
    fake = OtlpFake()
    with serve_in_thread(fake.app(), "OTLP collector") as base_url:
        fake.base_url = base_url
        yield fake
