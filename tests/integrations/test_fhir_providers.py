"""EHR_PROVIDER: the in-process fake FHIR server, `none`, the settings checks, the lifespan."""

import pytest
from pydantic import ValidationError

from backend.app.core.config import DEV_EHR_IDENTIFIER_SYSTEM, EhrProvider, Settings
from backend.app.core.errors import (
    EhrMultipleMatchesError,
    EhrNotConfiguredError,
    EhrResourceNotFoundError,
    EhrUnavailableError,
    EhrVersionConflictError,
    status_for,
)
from backend.app.integrations.fhir import DisabledEhr, FhirClient, create_fhir_client
from tests.conftest import make_settings, running_app
from tests.fakes.fhir_fixtures import RSA_KEY

SQLITE = "sqlite+aiosqlite:///:memory:"
PRODUCTION = {
    "environment": "production",
    "secret_key": "k" * 48,
    "database_url": "postgresql+asyncpg://app:app@db:5432/app",
    "billing_provider": "stripe",
    "stripe_secret_key": "sk_live_x",
    "stripe_webhook_secret": "whsec_x",
}
FHIR = {
    "ehr_provider": "fhir",
    "fhir_base_url": "https://fhir.example.com/r4",
    "ehr_identifier_system": "https://crm.example-clinic.com/ids/lead",
}


def _patient(value: str = "7", **overrides: str | None) -> dict[str, str | None]:
    return {
        "identifier_system": DEV_EHR_IDENTIFIER_SYSTEM,
        "identifier_value": value,
        "name": "Grace Brewster Hopper",
        "phone": "+14155550123",
        "email": "grace@example.com",
        **overrides,
    }


async def test_the_fake_provider_behaves_like_a_fhir_server():
    client = create_fhir_client(Settings(_env_file=None))  # type: ignore[call-arg]
    assert isinstance(client, FhirClient)
    try:
        made = await client.ensure_patient(**_patient())
        again = await client.ensure_patient(**_patient(name="Changed Name"))
        other = await client.ensure_patient(**_patient("8"))
        read = await client.read_patient(made.id)
        found = await client.find_patients(
            identifier_system=DEV_EHR_IDENTIFIER_SYSTEM, identifier_value="7"
        )
        updated = await client.update_patient(
            made.id, version_id="1", name="Grace Hopper", phone=None, email="g@navy.example"
        )
        with pytest.raises(EhrVersionConflictError):
            await client.update_patient(made.id, version_id="1", name="X", phone=None, email=None)
        with pytest.raises(EhrResourceNotFoundError):
            await client.read_patient("0000000000000000")
    finally:
        await client.aclose()
    assert (made.name, made.phone, made.email, made.version_id) == (
        "Grace Brewster Hopper",
        "+14155550123",
        "grace@example.com",
        "1",
    )
    assert again == made == read
    assert other.id != made.id
    assert found == [made]
    assert (updated.id, updated.version_id, updated.name, updated.phone) == (
        made.id,
        "2",
        "Grace Hopper",
        None,
    )
    assert made.last_updated is not None
    assert updated.last_updated is not None
    assert updated.last_updated >= made.last_updated


async def test_the_fake_provider_refuses_a_conditional_create_matching_several():
    client = create_fhir_client(Settings(_env_file=None))  # type: ignore[call-arg]
    assert isinstance(client, FhirClient)
    try:
        duplicate = {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:x", "value": "1"}],
            "name": [{"family": "Twin"}],
        }
        await client.create(duplicate)
        await client.create(duplicate)
        with pytest.raises(EhrMultipleMatchesError):
            await client.ensure_patient(**_patient("1", identifier_system="urn:x"))
    finally:
        await client.aclose()


async def test_provider_none_refuses_every_call_with_503():
    client = create_fhir_client(make_settings(SQLITE, ehr_provider="none"))
    assert isinstance(client, DisabledEhr)
    calls = [
        client.ensure_patient(**_patient()),
        client.read_patient("1"),
        client.find_patients(identifier_system="urn:x", identifier_value="1"),
        client.update_patient("1", version_id="1", name="X", phone=None, email=None),
    ]
    for call in calls:
        with pytest.raises(EhrNotConfiguredError):
            await call
    assert status_for(EhrNotConfiguredError) == 503
    await client.aclose()


def test_ehr_errors_map_to_the_contract_statuses():
    assert status_for(EhrUnavailableError) == 503
    assert status_for(EhrVersionConflictError) == 409
    assert status_for(EhrResourceNotFoundError) == 404


def test_the_default_is_the_fake_in_development_and_none_in_production():
    assert Settings(_env_file=None).ehr_provider is EhrProvider.FAKE  # type: ignore[call-arg]
    assert make_settings(SQLITE, ehr_provider="").ehr_provider is EhrProvider.FAKE
    production = Settings(_env_file=None, **PRODUCTION)  # type: ignore[arg-type]
    assert production.ehr_provider is EhrProvider.NONE


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({**PRODUCTION, "ehr_provider": "fake"}, "EHR_PROVIDER=fake is for development"),
        ({**FHIR, "fhir_base_url": ""}, "needs FHIR_BASE_URL"),
        ({**FHIR, "ehr_identifier_system": DEV_EHR_IDENTIFIER_SYSTEM}, "EHR_IDENTIFIER_SYSTEM"),
        (FHIR, "FHIR_ACCESS_TOKEN, or FHIR_CLIENT_ID"),
        ({**FHIR, "fhir_client_id": "c", "fhir_private_key": "pem"}, "FHIR_KEY_ID"),
        (
            {**FHIR, "fhir_private_key": "pem", "fhir_private_key_path": "/k.pem"},
            "not both",
        ),
    ],
)
def test_settings_refuse_an_unusable_ehr_configuration(values, complaint):
    with pytest.raises(ValidationError, match=complaint):
        Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_settings_accept_a_smart_or_static_token_configuration():
    smart = {"fhir_client_id": "c", "fhir_key_id": "k", "fhir_private_key": RSA_KEY.private_pem}
    for extra in (smart, {"fhir_access_token": "t"}):
        settings = Settings(_env_file=None, **PRODUCTION, **FHIR, **extra)  # type: ignore[arg-type]
        assert settings.ehr_provider is EhrProvider.FHIR
        assert RSA_KEY.private_pem not in repr(settings)


async def test_the_app_makes_the_ehr_client_in_its_lifespan():
    async with running_app(make_settings(SQLITE)) as app:
        assert isinstance(app.state.ehr_client, FhirClient)
    async with running_app(make_settings(SQLITE, ehr_provider="none")) as app:
        assert isinstance(app.state.ehr_client, DisabledEhr)
