"""The login limit across processes: shared through Redis, per process without it.

Needs the Redis at TEST_REDIS_URL (default redis://127.0.0.1:6379/15); each test uses its own
email and client address and deletes only the keys that carry them. Without Redis these
tests are skipped with a loud notice, or fail when CI=true.
"""

import os
import socket
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.assertions import assert_error
from tests.conftest import IN_CI, client_for, make_settings, running_app

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
async def redis_url() -> str:
    redis = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        message = f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail(f"{message}; CI requires it.")
        warnings.warn(f"SKIPPING the Redis rate limit tests: {message}", stacklevel=1)
        pytest.skip(message)
    finally:
        await redis.aclose()
    return REDIS_URL


@pytest.fixture
async def tag(redis_url: str) -> AsyncIterator[str]:
    """A token unique to this test, in its email and client address; its keys go afterwards."""
    value = uuid.uuid4().hex[:12]
    yield value
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"*{value}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


async def two_apps(stack: AsyncExitStack, database_url: str, redis_url: str | None) -> list:
    """Start two app instances (two "processes") with the same settings."""
    settings = make_settings(database_url, redis_url=redis_url)
    return [await stack.enter_async_context(running_app(settings)) for _ in range(2)]


async def failed_login(app, email: str, client_ip: str):
    async with client_for(app, client_ip=client_ip) as http:
        return await http.post(
            "/api/v1/auth/token", data={"username": email, "password": "wrong password"}
        )


async def test_two_apps_with_one_redis_share_the_login_limit(sqlite_url, redis_url, tag):
    email, client_ip = f"{tag}@example.com", f"ip-{tag}"
    async with AsyncExitStack() as stack:
        first, second = await two_apps(stack, sqlite_url, redis_url)
        for app in [first, second] * 5:
            assert (await failed_login(app, email, client_ip)).status_code == 401
        for app in (first, second):
            response = await failed_login(app, email, client_ip)
            assert_error(response, 429, "rate_limited")
            assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_without_redis_each_app_counts_its_own_failures(sqlite_url):
    email, client_ip = f"{uuid.uuid4().hex[:12]}@example.com", "10.9.9.9"
    async with AsyncExitStack() as stack:
        first, second = await two_apps(stack, sqlite_url, None)
        for _ in range(10):
            assert (await failed_login(first, email, client_ip)).status_code == 401
        assert (await failed_login(second, email, client_ip)).status_code == 401
        assert_error(await failed_login(first, email, client_ip), 429, "rate_limited")


async def test_an_unreachable_redis_refuses_logins_with_503(sqlite_url):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = make_settings(sqlite_url, redis_url=f"redis://127.0.0.1:{port}/15")
    async with running_app(settings) as app:
        response = await failed_login(app, "ada@example.com", "10.9.9.8")
    assert_error(response, 503, "service_unavailable")
