"""Two API processes (`serve` with WEB_CONCURRENCY=2) and two worker processes, one PostgreSQL
and one Redis: the login limit is shared, no text goes out twice, and the metrics of both API
processes add up at /metrics (prometheus-client's multiprocess mode).

Needs PostgreSQL and the Redis at TEST_REDIS_URL (default redis://127.0.0.1:6379/15). Every
wait is bounded.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from backend.app.core.database import create_engine, create_session_factory
from backend.app.crud import messages as crud_messages
from backend.app.models import User
from tests.conftest import IN_CI, fresh_postgres_database, make_settings
from tests.factories import PASSWORD, unique_email
from tests.fakes.twilio_fake import FakeTwilio, Fault, running_fake
from tests.metrics import value
from tests.server import REPO_ROOT, free_port, serve, stop

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
LOGIN_LIMIT = 3
TEXTS = 30
TOKEN_ROUTE = {"method": "POST", "route": "/api/v1/auth/token"}


@pytest.fixture
def redis_url() -> str:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        message = f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__})"
        if IN_CI:
            pytest.fail(f"{message}; CI requires it.")
        warnings.warn(f"SKIPPING the scale-out test: {message}", stacklevel=1)
        pytest.skip(message)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:  # empty: `serve` migrates it
        yield url


@contextmanager
def workers(fake: FakeTwilio, database_url: str, ports: list[int]) -> Iterator[None]:
    """`python -m backend.app.worker` once per port, each serving its metrics there."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": fake.base_url,
        "WORKER_CONCURRENCY": "2",  # small rounds, so both workers claim some
        "WORKER_POLL_SECONDS": "0.05",
        "LOG_LEVEL": "WARNING",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "backend.app.worker"],
            cwd=REPO_ROOT,
            env={**env, "HOST": "127.0.0.1", "WORKER_METRICS_PORT": str(port)},
        )
        for port in ports
    ]
    try:
        for port in ports:
            _wait_for(lambda port=port: _answers(f"http://127.0.0.1:{port}/metrics"), 30)
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            stop(process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def per_process(directory: Path) -> dict[int, str]:
    """Each API process's own metrics, read from its files alone, as Prometheus text."""
    from prometheus_client import CollectorRegistry, generate_latest

    found = {}
    pids = {int(path.stem.rpartition("_")[2]) for path in directory.glob("counter_*.db")}
    for pid in pids:
        files = [str(path) for path in directory.glob(f"*_{pid}.db")]
        registry = CollectorRegistry(auto_describe=False)
        metrics = MultiProcessCollector.merge(files)
        registry.register(_Fixed(metrics))
        found[pid] = generate_latest(registry).decode()
    return found


class _Fixed:
    def __init__(self, metrics: list) -> None:
        self._metrics = metrics

    def collect(self):
        return iter(self._metrics)


def login(base_url: str, email: str, password: str, client_ip: str) -> int:
    """One login on a connection of its own (so either process may take it)."""
    response = httpx.post(
        f"{base_url}/api/v1/auth/token",
        data={"username": email, "password": password},
        headers={"X-Forwarded-For": client_ip, "Connection": "close"},
        timeout=10,
    )
    return response.status_code


async def _queue_texts(database_url: str, email: str, count: int) -> None:
    """Queue `count` texts of user `email` in the shared database, as an endpoint would."""
    engine = create_engine(make_settings(database_url))
    try:
        async with create_session_factory(engine).begin() as session:
            sender = await session.scalar(select(User).where(User.email == email))
            assert sender is not None
            for n in range(count):
                await crud_messages.queue_text(
                    session,
                    to="+14155550100",
                    body=f"text {n}",
                    send_at=None,
                    about=None,
                    sender=sender,
                    daily_limit=count,
                )
    finally:
        await engine.dispose()


def test_two_api_processes_and_two_workers_share_one_database_and_redis(
    database_url, redis_url, tmp_path
):
    metrics_dir = tmp_path / "metrics"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOGIN_MAX_FAILURES": str(LOGIN_LIMIT),
        "LOG_LEVEL": "WARNING",
    }
    tag = uuid.uuid4().hex[:12]
    with running_fake() as fake, serve(env, tmp_path / "api.log", timeout=60) as api:
        base = api.base_url
        # Two live API processes, each with its own metrics files.
        _wait_for(lambda: len(set(metrics_dir.glob("gauge_livesum_*.db"))) == 2, 30)

        # The login limit is one for both processes.
        email = unique_email(f"limited-{tag}")
        client_ip = f"10.{int(tag[:2], 16)}.{int(tag[2:4], 16)}.{int(tag[4:6], 16)}"
        statuses: list[int] = []
        while len(statuses) < 60:
            statuses.append(login(base, email, "wrong-pass", client_ip))
            processes = per_process(metrics_dir)
            refused = [
                value(text, "rate_limit_refusals_total", limit="login")
                for text in processes.values()
            ]
            if len(refused) == 2 and all(refused):
                break
        assert len(refused) == 2
        assert all(refused), "one process took every login"
        assert statuses.count(401) == LOGIN_LIMIT  # per process, it would be up to twice that
        assert set(statuses[LOGIN_LIMIT:]) == {429}

        # Metrics of both processes add up, whichever process answers the scrape. (A request
        # is counted just after its answer is sent: wait for the last one.)
        attempts = len(statuses)

        def counted() -> list[float]:
            texts = per_process(metrics_dir).values()
            return [value(t, "http_requests_total", **TOKEN_ROUTE, status="4xx") for t in texts]

        _wait_for(lambda: sum(counted()) == attempts, 10)
        assert len(counted()) == 2
        assert all(counted()), "each process counted its own requests"
        for _ in range(4):
            scraped = httpx.get(f"{base}/metrics", headers={"Connection": "close"}).text
            assert value(scraped, "http_requests_total", **TOKEN_ROUTE, status="4xx") == attempts
            assert value(scraped, "login_failures_total") == LOGIN_LIMIT
            assert value(scraped, "rate_limit_refusals_total", limit="login") == (
                attempts - LOGIN_LIMIT
            )

        # Two workers drain one outbox: each text goes out once.
        ports = [free_port(), free_port()]
        fake.faults.append(Fault(delay=0.02, count=TEXTS))  # each send takes a moment
        with workers(fake, database_url, ports):
            member = unique_email(f"member-{tag}")
            registered = httpx.post(
                f"{base}/api/v1/auth/register", json={"email": member, "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            asyncio.run(_queue_texts(database_url, member, TEXTS))
            _wait_for(lambda: len(fake.creates()) >= TEXTS, 60)
            time.sleep(0.5)  # a duplicate, if any, would show by now
            sent = [
                value(
                    httpx.get(f"http://127.0.0.1:{port}/metrics").text,
                    "sms_sends_total",
                    provider="twilio",
                    outcome="sent",
                )
                for port in ports
            ]
        bodies = sorted(request.form["Body"] for request in fake.creates())
        assert bodies == sorted(f"text {n}" for n in range(TEXTS))
        assert sum(sent) == TEXTS
        assert all(sent), f"one worker sent everything: {sent}"
    Redis.from_url(redis_url).delete(
        f"ratelimit:login:email:{email}", f"ratelimit:login:client:{client_ip}"
    )


def test_serve_refuses_several_processes_whose_metrics_would_not_add_up(tmp_path):
    env = {
        **os.environ,
        "WEB_CONCURRENCY": "2",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    done = subprocess.run(
        [sys.executable, "-m", "backend.app.cli", "serve"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR" in done.stderr
    assert not (tmp_path / "x.db").exists()  # refused before migrating
