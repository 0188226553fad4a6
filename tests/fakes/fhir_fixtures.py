"""Fixtures and settings for tests that talk to the FHIR stand-in.

Import the fixtures into a folder's conftest: `from tests.fakes.fhir_fixtures import ...`.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from backend.app.core.config import Settings
from backend.app.integrations.fhir import FhirClient, create_fhir_client
from tests.conftest import make_settings
from tests.fakes.fhir_fake import FakeFhir, running_fake
from tests.fakes.smart_fake import new_key

IDENTIFIER_SYSTEM = "https://crm.example-clinic.test/ids/lead"
RSA_KEY = new_key("rsa-test-1", "RS384")
EC_KEY = new_key("ec-test-1", "ES384")


@pytest.fixture(scope="session")
def fhir_fake_server() -> Iterator[FakeFhir]:
    """One stand-in for the whole session, on a free port of 127.0.0.1."""
    fake = FakeFhir(keys={key.kid: key for key in (RSA_KEY, EC_KEY)})
    with running_fake(fake) as running:
        yield running


@pytest.fixture
def fhir_fake(fhir_fake_server: FakeFhir) -> Iterator[FakeFhir]:
    """The stand-in, reset before and after the test."""
    fhir_fake_server.reset()
    yield fhir_fake_server
    fhir_fake_server.reset()


def fhir_settings(fake: FakeFhir, *, algorithm: str = "RS384", **overrides: Any) -> Settings:
    """Settings for SMART Backend Services against `fake`, with short timeouts for tests.

    Pass `fhir_access_token=...` for the static-token variant.
    """
    key = RSA_KEY if algorithm == "RS384" else EC_KEY
    values: dict[str, Any] = {
        "ehr_provider": "fhir",
        "ehr_identifier_system": IDENTIFIER_SYSTEM,
        "fhir_base_url": fake.fhir_base,
        "fhir_client_id": fake.client_id,
        "fhir_private_key": key.private_pem,
        "fhir_key_id": key.kid,
        "fhir_signing_algorithm": algorithm,
        "fhir_timeout_seconds": 2.0,
        "fhir_max_retries": 2,
        "fhir_max_retry_wait_seconds": 1.5,
        # The stand-in is shared: only a test that asks for it trips the circuit.
        "fhir_circuit_failures": 1000,
        **overrides,
    }
    return make_settings("sqlite+aiosqlite:///:memory:", **values)


@asynccontextmanager
async def open_fhir_client(settings: Settings) -> AsyncIterator[FhirClient]:
    """The real FHIR client for `settings`, closed when the block ends."""
    client = create_fhir_client(settings)
    assert isinstance(client, FhirClient)
    try:
        yield client
    finally:
        await client.aclose()
