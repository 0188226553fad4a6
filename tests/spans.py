"""Spans of the code under test, caught by the OpenTelemetry SDK's in-memory exporter.

A process has one tracer provider: the session fixture installs ours (through the app's own
`install_tracer_provider`, so the URL redaction applies) before any app turns tracing on;
an app with OTEL_EXPORTER_OTLP_ENDPOINT set then uses it instead of exporting over OTLP.
Import the fixtures into a folder's conftest.
"""

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from backend.app.core.tracing import install_tracer_provider

# Tracing on; nothing listens here: the spans go to the in-memory exporter.
UNUSED_OTLP_ENDPOINT = "http://127.0.0.1:9"


@dataclass
class Spans:
    """The spans finished since the test began."""

    provider: TracerProvider
    exporter: InMemorySpanExporter

    def finished(self) -> list[ReadableSpan]:
        self.provider.force_flush()
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name == name]


@functools.cache
def span_pipeline() -> tuple[TracerProvider, InMemorySpanExporter]:
    """The process's one provider, exporting to memory (made once, whichever folder asks)."""
    exporter = InMemorySpanExporter()
    provider = install_tracer_provider("tests", exporter)
    assert trace.get_tracer_provider() is provider
    return provider, exporter


@pytest.fixture
def spans() -> Iterator[Spans]:
    provider, exporter = span_pipeline()
    provider.force_flush()
    exporter.clear()
    yield Spans(provider, exporter)
    provider.force_flush()
    exporter.clear()
