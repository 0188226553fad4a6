"""Prometheus metrics: what the API and the worker count, and how `/metrics` renders it.

The metric objects are process-wide, as prometheus-client means them to be; code records
through the small functions below (`record_send`, `set_outbox_depth`, `record_payment`, ...)
and `RequestMetrics`, which `RequestContextMiddleware` calls once per request.

Several API processes (`WEB_CONCURRENCY` > 1) write their figures to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode, chosen when the library is
imported, from the process environment), and `/metrics` adds the files up: counters and
histograms are summed, gauges summed over live processes (`livesum`) or the latest value
(`livemostrecent`). The database pool is read at scrape time by `PoolCollector` in one
process; with several, each process copies its pool into `POOL_CONNECTIONS` every few
seconds (`sample_pool`). The worker process serves its own figures (`serve_worker_metrics`).
"""

import asyncio
import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from fastapi.routing import iter_route_contexts
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
    values,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from starlette.types import Scope

UNMATCHED = "unmatched"  # the route label of requests no route matched (404s, preflights)
POOL_SAMPLE_SECONDS = 5.0
POOL_METRIC = "db_pool_connections"
POOL_HELP = "Database connections of the pool: in_use, idle, overflow (beyond DATABASE_POOL_SIZE)."
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
_LABELS = ("method", "route", "status")

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status class (2xx, 4xx, ...).",
    _LABELS,
)
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status class.",
    _LABELS,
)
IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "HTTP requests being answered now.",
    multiprocess_mode="livesum",
)
# Registered nowhere: only multiprocess mode reads it (from the files); one process is
# read at scrape time by PoolCollector instead.
POOL_CONNECTIONS = Gauge(
    POOL_METRIC,
    POOL_HELP,
    ["state"],
    multiprocess_mode="livesum",
    registry=None,
)
OUTBOX_MESSAGES = Gauge(
    "sms_outbox_messages",
    "Outbound texts waiting in the outbox, by status (scheduled, queued, sending).",
    ["status"],
    multiprocess_mode="livemostrecent",
)
SENDS = Counter(
    "sms_sends_total",
    "Tries to send a text, by provider and outcome (sent, retry, failed, or a final status "
    "a lookup found).",
    ["provider", "outcome"],
)
SEND_FAILURES = Counter(
    "sms_send_failures_total",
    "Tries to send a text that failed, by provider and error code (retried or final).",
    ["provider", "error_code"],
)
SEND_SECONDS = Histogram(
    "sms_send_duration_seconds",
    "Time one try to send a text took (lookup included), by provider.",
    ["provider"],
)
# The same three for every other delivery (`worker/outbox_delivery.py`), by its name.
DELIVERY_OUTBOX = Gauge(
    "delivery_outbox_rows",
    "Rows waiting in a delivery's outbox, by delivery and status (queued, sending).",
    ["delivery", "status"],
    multiprocess_mode="livemostrecent",
)
DELIVERY_TRIES = Counter(
    "delivery_tries_total",
    "Tries to perform an outbox row, by delivery and outcome (sent, retry, failed).",
    ["delivery", "outcome"],
)
DELIVERY_FAILURES = Counter(
    "delivery_failures_total",
    "Tries that failed, by delivery and error code (retried or final).",
    ["delivery", "error_code"],
)
DELIVERY_SECONDS = Histogram(
    "delivery_duration_seconds",
    "Time one try took, by delivery.",
    ["delivery"],
)
PAYMENTS = Counter(
    "payments_total",
    "Payments that reached a final state (paid, failed, expired), by that state.",
    ["status"],
)
LOGIN_FAILURES = Counter("login_failures_total", "Failed logins (wrong email or password).")
RATE_LIMIT_REFUSALS = Counter(
    "rate_limit_refusals_total",
    "Requests refused with 429 by a rate limit, by limit.",
    ["limit"],
)


def record_send(provider: str, outcome: str, error_code: str | None, seconds: float) -> None:
    """Count one try to send a text and time it.

    Args:
        provider: `twilio` or `console` (SMS_PROVIDER).
        outcome: what the try led to: `sent`, `retry` (queued again), `failed`, or the final
            status a lookup found (`delivered`, `undelivered`).
        error_code: the provider's code (`21610`) or ours (`lead_opted_out`) when it failed.
        seconds: how long the try took.
    """
    SENDS.labels(provider, outcome).inc()
    if error_code is not None:
        SEND_FAILURES.labels(provider, error_code).inc()
    SEND_SECONDS.labels(provider).observe(seconds)


def set_outbox_depth(counts: Mapping[str, int]) -> None:
    """Publish how many outbound texts wait, by status; a status not in `counts` is 0."""
    for status in ("scheduled", "queued", "sending"):
        OUTBOX_MESSAGES.labels(status).set(counts.get(status, 0))


def record_delivery(delivery: str, outcome: str, error_code: str | None, seconds: float) -> None:
    """Count one try of an outbox row of `delivery` (e.g. `email`) and time it.

    Args:
        delivery: the delivery's name in `worker/registry.py`.
        outcome: `sent`, `retry` (queued again) or `failed`.
        error_code: our error code when it failed (`provider_rejected`, ...).
        seconds: how long the try took.
    """
    DELIVERY_TRIES.labels(delivery, outcome).inc()
    if error_code is not None:
        DELIVERY_FAILURES.labels(delivery, error_code).inc()
    DELIVERY_SECONDS.labels(delivery).observe(seconds)


def set_delivery_outbox_depth(delivery: str, counts: Mapping[str, int]) -> None:
    """Publish how many rows of `delivery`'s outbox wait, by status; missing ones are 0."""
    for status in ("queued", "sending"):
        DELIVERY_OUTBOX.labels(delivery, status).set(counts.get(status, 0))


def record_payment(status: str) -> None:
    """Count a payment that just reached its final `status` (paid, failed, expired).

    Counted when the webhook decides it, before its transaction commits: the rare commit
    that fails (then Stripe redelivers) counts that payment twice.
    """
    PAYMENTS.labels(status).inc()


def record_login_failure() -> None:
    """Count a failed login."""
    LOGIN_FAILURES.inc()


def record_rate_limit_refusal(limit: str) -> None:
    """Count a request refused by the rate limit named `limit` (e.g. `login`)."""
    RATE_LIMIT_REFUSALS.labels(limit).inc()


class RequestMetrics:
    """Counts and times requests by method, route template and status class.

    The template is the route's full path (`/api/v1/leads/{lead_id}`), never the raw path,
    so ids do not multiply the series. The label children are cached, so a request costs
    two dictionary lookups and three updates.
    """

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._templates: dict[int, str] = {}

    def started(self) -> None:
        """A request begins."""
        IN_PROGRESS.inc()

    def finished(self, scope: Scope, status: int, seconds: float) -> None:
        """A request ended with `status` after `seconds`."""
        IN_PROGRESS.dec()
        method = scope["method"] if scope["method"] in _METHODS else "other"
        status_class = _STATUS_CLASSES[status // 100] if 0 <= status < 600 else "5xx"
        key = (method, self._template(scope), status_class)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (REQUESTS.labels(*key), REQUEST_SECONDS.labels(*key))
        children[0].inc()
        children[1].observe(seconds)

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            mount = scope.get("app_root_path")  # a mounted app (/static) matched
            return f"{mount}/{{path}}" if mount else UNMATCHED
        template = self._templates.get(id(route))
        return template if template is not None else self._learn(scope, route)

    def _learn(self, scope: Scope, route: object) -> str:
        """Find the full path of `route` among the app's routes (its own path lacks prefixes).

        A router included under two prefixes (`/api/v1` and `/api/v2`) has one route object
        for both: then the request's path decides, each time.
        """
        found = [c for c in iter_route_contexts(scope["app"].routes) if c.original_route is route]
        if len(found) == 1 and found[0].path:
            self._templates[id(route)] = found[0].path
            return found[0].path
        for context in found:
            if context.path and context.path_regex.match(scope["path"]):
                return context.path
        return str(getattr(route, "path", UNMATCHED))


class PoolCollector:
    """Reads the engine's connection pool when Prometheus scrapes (one process)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        """Yield `db_pool_connections` by state (nothing for a pool without a queue)."""
        family = GaugeMetricFamily(POOL_METRIC, POOL_HELP, labels=["state"])
        for state, value in pool_state(self._engine).items():
            family.add_metric([state], value)
        yield family


def pool_state(engine: AsyncEngine) -> dict[str, int]:
    """Connections of `engine`'s pool in use, idle and beyond the pool size (overflow)."""
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return {}
    return {
        "in_use": pool.checkedout(),
        "idle": pool.checkedin(),
        "overflow": max(0, pool.overflow()),
    }


async def sample_pool(engine: AsyncEngine, stop: asyncio.Event) -> None:
    """Copy the pool's state into POOL_CONNECTIONS every few seconds until `stop` is set.

    Several processes: each writes its own (multiprocess mode sums the live ones).
    """
    while not stop.is_set():
        for state, value in pool_state(engine).items():
            POOL_CONNECTIONS.labels(state).set(value)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POOL_SAMPLE_SECONDS)


def multiprocess_active() -> bool:
    """Whether prometheus-client writes to PROMETHEUS_MULTIPROC_DIR in this process."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class Exposition:
    """Renders the metrics of this process, or of all of them, for `GET /metrics`."""

    def __init__(self, engine: AsyncEngine, multiproc_dir: str | None) -> None:
        self._dir = multiproc_dir
        self._own = CollectorRegistry(auto_describe=False)
        self._own.register(PoolCollector(engine))

    def render(self) -> bytes:
        """The Prometheus text format of every metric (blocking: reads files)."""
        if self._dir is None:
            return generate_latest(REGISTRY) + generate_latest(self._own)
        forget_dead_processes(Path(self._dir))
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=self._dir)
        return generate_latest(registry)


def forget_dead_processes(directory: Path) -> None:
    """Drop the live gauges of API processes that died (uvicorn replaced them).

    Counters of a dead process stay: they are part of the totals.
    """
    pids = {_pid(path) for path in directory.glob("gauge_live*_*.db")}
    for pid in {pid for pid in pids if pid is not None}:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, str(directory))
        except PermissionError:  # alive, another user's
            continue


def _pid(path: Path) -> int | None:
    tail = path.stem.rpartition("_")[2]
    return int(tail) if tail.isdigit() else None


@contextlib.contextmanager
def serve_worker_metrics(host: str, port: int) -> Iterator[None]:
    """Serve this process's metrics on `host:port` (a thread) for the block's duration."""
    server, thread = start_http_server(port, addr=host)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
