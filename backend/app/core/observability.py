"""Metrics, traces and error reports of the API or the worker, started and stopped together.

The API's lifespan and the worker process each call `start_observability(...)` once its
engine exists, and `await stop()` at the end. See README "Operating" for what each gives an
operator and the settings that turn it on.
"""

import asyncio
import contextlib
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from backend.app.core.config import Settings
from backend.app.core.error_reporting import start_error_reporting, stop_error_reporting
from backend.app.core.metrics import (
    Exposition,
    multiprocess_active,
    sample_pool,
    serve_worker_metrics,
)
from backend.app.core.tracing import Tracing, start_tracing

Component = Literal["api", "worker"]


class Observability:
    """What one component turned on: tracing, error reports, and its metrics' way out.

    `exposition` renders `GET /metrics` (the API, when metrics are served); the worker
    serves its own on WORKER_METRICS_PORT instead.
    """

    def __init__(self, settings: Settings, engine: AsyncEngine, component: Component) -> None:
        self.tracing: Tracing | None = start_tracing(
            settings, default_service_name=f"lead-tracker-{component}"
        )
        if self.tracing is not None:
            self.tracing.instrument_engine(engine)
        self._reporting = start_error_reporting(settings)
        self.exposition: Exposition | None = None
        self._stop = asyncio.Event()
        self._sampler: asyncio.Task[None] | None = None
        self._servers = contextlib.ExitStack()
        if component == "api" and settings.metrics_served:
            self._expose(settings, engine)
        elif component == "worker" and settings.metrics_enabled and settings.worker_metrics_port:
            self._servers.enter_context(
                serve_worker_metrics(settings.host, settings.worker_metrics_port)
            )

    def _expose(self, settings: Settings, engine: AsyncEngine) -> None:
        """Prepare `/metrics`; with several processes, sample the pool into shared files.

        Raises:
            RuntimeError: PROMETHEUS_MULTIPROC_DIR is set for the app but prometheus-client
                did not see it (it reads the process environment, not .env).
        """
        directory = settings.prometheus_multiproc_dir
        if directory is not None and not multiprocess_active():
            raise RuntimeError(
                "PROMETHEUS_MULTIPROC_DIR must be set in the process environment (not only "
                "in .env): prometheus-client reads it there when it is first imported."
            )
        self.exposition = Exposition(engine, directory)
        if directory is not None:
            self._sampler = asyncio.create_task(sample_pool(engine, self._stop), name="pool")

    async def stop(self) -> None:
        """Stop sampling and serving, send buffered spans and reports, remove hooks."""
        self._stop.set()
        if self._sampler is not None:
            await self._sampler
        self._servers.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.close)
        if self._reporting:
            await asyncio.to_thread(stop_error_reporting)


def start_observability(
    settings: Settings, engine: AsyncEngine, *, component: Component
) -> Observability:
    """Turn on what the settings ask for `component` (`api` or `worker`)."""
    return Observability(settings, engine, component)
