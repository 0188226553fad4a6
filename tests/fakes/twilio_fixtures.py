"""Fixtures and settings for tests that talk to the Twilio stand-in.

Import the fixtures into a folder's conftest: `from tests.fakes.twilio_fixtures import ...`.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from backend.app.core.config import Settings
from backend.app.integrations.twilio import TwilioClient, create_twilio_client
from tests.conftest import make_settings
from tests.fakes.twilio_fake import FakeTwilio, running_fake

FROM_NUMBER = "+15005550006"


@pytest.fixture(scope="session")
def twilio_fake_server() -> Iterator[FakeTwilio]:
    """One stand-in for the whole session, on a free port of 127.0.0.1."""
    with running_fake() as fake:
        yield fake


@pytest.fixture
def twilio_fake(twilio_fake_server: FakeTwilio) -> Iterator[FakeTwilio]:
    """The stand-in, reset before and after the test."""
    twilio_fake_server.reset()
    yield twilio_fake_server
    twilio_fake_server.reset()


def twilio_settings(
    fake: FakeTwilio, database_url: str = "sqlite+aiosqlite:///:memory:", **overrides: Any
) -> Settings:
    """Settings that send through `fake`, with short timeouts and backoffs for tests."""
    values: dict[str, Any] = {
        "sms_provider": "twilio",
        "twilio_account_sid": fake.account_sid,
        "twilio_auth_token": fake.auth_token,
        "twilio_from_number": FROM_NUMBER,
        "twilio_api_base_url": fake.base_url,
        "twilio_timeout_seconds": 2.0,
        "twilio_max_retries": 2,
        "twilio_max_retry_wait_seconds": 1.5,
        "worker_lease_seconds": 30.0,
        "sms_retry_base_seconds": 0.4,
        "sms_retry_max_seconds": 1.0,
        **overrides,
    }
    return make_settings(database_url, **values)


def twilio_client(settings: Settings, **paging: int) -> TwilioClient:
    """The real Twilio client for `settings` (which must name the twilio provider).

    Without `paging` it is the client the app builds (`create_twilio_client`); `paging`
    (`lookup_page_size`, `lookup_max_pages`) makes lookups read small pages, so a test
    crosses many pages with few messages.
    """
    if not paging:
        client = create_twilio_client(settings)
        assert isinstance(client, TwilioClient)
        return client
    token = settings.twilio_auth_token
    return TwilioClient(
        account_sid=settings.twilio_account_sid or "",
        auth_token=token.get_secret_value() if token else "",
        from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        base_url=settings.twilio_api_base_url,
        timeout_seconds=settings.twilio_timeout_seconds,
        max_retries=settings.twilio_max_retries,
        max_retry_wait_seconds=settings.twilio_max_retry_wait_seconds,
        **paging,
    )


@asynccontextmanager
async def open_twilio_client(settings: Settings, **paging: int) -> AsyncIterator[TwilioClient]:
    """`twilio_client(settings, **paging)`, closed when the block ends."""
    client = twilio_client(settings, **paging)
    try:
        yield client
    finally:
        await client.aclose()
