"""Fixtures and settings for tests that talk to the Stripe stand-in.

Import the fixtures into a folder's conftest: `from tests.fakes.stripe_fixtures import ...`.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.app.core.config import Settings
from tests.conftest import clean_database, client_for, make_settings, running_app
from tests.fakes.stripe_fake import FakeStripe, running_fake


@pytest.fixture(scope="session")
def stripe_fake_server() -> Iterator[FakeStripe]:
    """One stand-in for the whole session, on a free port of 127.0.0.1."""
    with running_fake() as fake:
        yield fake


@pytest.fixture
def stripe_fake(stripe_fake_server: FakeStripe) -> Iterator[FakeStripe]:
    """The stand-in, reset before and after the test."""
    stripe_fake_server.reset()
    yield stripe_fake_server
    stripe_fake_server.reset()


def stripe_settings(fake: FakeStripe, database_url: str, **overrides: Any) -> Settings:
    """Settings that bill through `fake`, with short timeouts for tests."""
    values: dict[str, Any] = {
        "billing_provider": "stripe",
        "stripe_secret_key": fake.secret_key,
        "stripe_webhook_secret": fake.webhook_secret,
        "stripe_api_base_url": fake.base_url,
        "stripe_timeout_seconds": 2.0,
        "stripe_max_retries": 2,
        # The app is shared by a session of tests: only a test that asks for it trips the circuit.
        "stripe_circuit_failures": 1000,
        **overrides,
    }
    return make_settings(database_url, **values)


@pytest.fixture(scope="session")
async def stripe_app(database_url: str, stripe_fake_server: FakeStripe) -> AsyncIterator[FastAPI]:
    """The app of the current backend with BILLING_PROVIDER=stripe, pointed at the stand-in."""
    async with running_app(stripe_settings(stripe_fake_server, database_url)) as application:
        yield application


@pytest.fixture
async def stripe_client(
    stripe_app: FastAPI, stripe_fake: FakeStripe
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `stripe_app`; tables and the stand-in start empty."""
    async with client_for(stripe_app) as http:
        yield http
    await clean_database(stripe_app)
