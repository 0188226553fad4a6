"""A won lead becomes a Patient in the EHR: `POST`/`GET /api/v1/leads/{id}/ehr-patient`.

Every test runs on both databases. `ehr` runs the contract tests twice more: with the
default provider (`fake`, the in-process FHIR server) and with EHR_PROVIDER=fhir against the
FHIR stand-in over real HTTP (SMART Backend Services tokens). Faults are injected at the
stand-in only.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from backend.app.core.config import Settings
from backend.app.core.logging import JsonFormatter
from backend.app.integrations.fhir import EhrClient, PatientRecord, create_fhir_client
from backend.app.models import Lead
from tests.assertions import assert_error
from tests.conftest import clean_database, client_for, make_settings, running_app
from tests.factories import AuthedUser, make_admin, make_lead, make_member
from tests.fakes.fhir_fake import FakeFhir, Fault, RecordedRequest
from tests.fakes.fhir_fixtures import (
    IDENTIFIER_SYSTEM,
    RSA_KEY,
    fhir_fake,
    fhir_fake_server,
    fhir_settings,
)

__all__ = ["fhir_fake", "fhir_fake_server"]  # the stand-in's fixtures, used below

LEAD = {"name": "Ada Lovelace", "phone": "+1 (415) 555-0100", "email": "ada@example.com"}
BODY_FIELDS = {
    "lead_id",
    "patient_id",
    "reference",
    "name",
    "phone",
    "email",
    "version_id",
    "last_updated",
}


# --- fixtures: the app with each EHR provider ----------------------------------------------


def _stand_in_settings(fake: FakeFhir, database_url: str, **overrides: Any) -> Settings:
    """EHR_PROVIDER=fhir against the stand-in (SMART tokens), with short timeouts."""
    short = {"fhir_timeout_seconds": 0.5, "fhir_max_retries": 1, "fhir_max_retry_wait_seconds": 0.2}
    settings = fhir_settings(fake, **{**short, **overrides})
    return settings.model_copy(update={"database_url": database_url})


@pytest.fixture(scope="session")
async def fhir_app(database_url: str, fhir_fake_server: FakeFhir) -> AsyncIterator[FastAPI]:
    """The app of the current backend with EHR_PROVIDER=fhir, pointed at the stand-in."""
    async with running_app(_stand_in_settings(fhir_fake_server, database_url)) as application:
        yield application


@pytest.fixture
async def fhir_client(fhir_app: FastAPI, fhir_fake: FakeFhir) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `fhir_app`; tables and the stand-in start empty."""
    async with client_for(fhir_app) as http:
        yield http
    await clean_database(fhir_app)


@pytest.fixture
async def fresh_fake_ehr(app: FastAPI) -> AsyncIterator[None]:
    """An empty in-process EHR for the default app, as after a restart.

    The session's app keeps its fake EHR across tests, while lead ids start again at 1 once
    the tables are emptied: a new lead would find the patient of an earlier test's lead.
    """
    kept = app.state.ehr_client
    app.state.ehr_client = create_fhir_client(app.state.settings)
    try:
        yield
    finally:
        await app.state.ehr_client.aclose()
        app.state.ehr_client = kept


@dataclass(frozen=True)
class Ehr:
    """The API client of an app, that app, and the stand-in when it is the EHR."""

    http: httpx.AsyncClient
    app: FastAPI
    stand_in: FakeFhir | None

    @property
    def client(self) -> EhrClient:
        """The app's own EHR client: to look at (or change) the EHR from outside the API."""
        client: EhrClient = self.app.state.ehr_client
        return client

    async def patients_of(self, lead_id: int) -> list[PatientRecord]:
        """The patients in the EHR that carry this lead's id."""
        return await self.client.find_patients(
            identifier_system=self.app.state.settings.ehr_identifier_system,
            identifier_value=str(lead_id),
        )


@pytest.fixture(params=["fake", "fhir"])
def ehr(request: pytest.FixtureRequest, database_url: str) -> Ehr:
    """The default provider (`fake`), then EHR_PROVIDER=fhir against the stand-in.

    (`database_url` is named so that each backend's run gets its own apps.)
    """
    if request.param == "fake":
        request.getfixturevalue("fresh_fake_ehr")
        return Ehr(request.getfixturevalue("client"), request.getfixturevalue("app"), None)
    return Ehr(
        request.getfixturevalue("fhir_client"),
        request.getfixturevalue("fhir_app"),
        request.getfixturevalue("fhir_fake"),
    )


# --- helpers -------------------------------------------------------------------------------


def _url(lead: dict[str, Any]) -> str:
    return f"/api/v1/leads/{lead['id']}/ehr-patient"


async def _won_lead(http: httpx.AsyncClient, owner: AuthedUser, **fields: Any) -> dict[str, Any]:
    lead = await make_lead(http, owner, **{**LEAD, **fields})
    response = await http.patch(f"/api/v1/leads/{lead['id']}", json={"status": "won"}, **_h(owner))
    assert response.status_code == 200, response.text
    return lead


def _h(owner: AuthedUser, key: str | None = None) -> dict[str, dict[str, str]]:
    headers = {**owner.headers, **({"Idempotency-Key": key} if key else {})}
    return {"headers": headers}


async def _stored_link(app: FastAPI, lead: dict[str, Any]) -> str | None:
    async with app.state.session_factory() as session:
        stored: str | None = await session.scalar(
            select(Lead.ehr_patient_id).where(Lead.id == lead["id"])
        )
        return stored


def _creates(stand_in: FakeFhir | None) -> list[RecordedRequest]:
    """The creates the stand-in received with a valid token.

    Not those it refused with 401: the app's token from an earlier test is unknown to the
    stand-in once reset, so the app's first call of a test is refused, and repeated with a
    new token.
    """
    if stand_in is None:
        return []
    refused = {f"Bearer {token}" for token in stand_in.refused_tokens}
    return [r for r in stand_in.fhir_requests("POST") if r.headers["authorization"] not in refused]


# --- the contract, with each provider ------------------------------------------------------


async def test_a_won_lead_becomes_one_patient_201_then_200(ehr: Ehr) -> None:
    owner = await make_member(ehr.http)
    lead = await _won_lead(ehr.http, owner)
    first = await ehr.http.post(_url(lead), **_h(owner))
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == BODY_FIELDS
    assert body["lead_id"] == lead["id"]
    assert body["reference"] == f"Patient/{body['patient_id']}"
    assert (body["name"], body["phone"], body["email"]) == (
        "Ada Lovelace",
        "+14155550100",
        "ada@example.com",
    )
    assert body["version_id"] == "1"
    assert body["last_updated"].endswith(("Z", "+00:00"))
    assert "idempotent-replayed" not in first.headers

    again = await ehr.http.post(_url(lead), **_h(owner))
    assert again.status_code == 200, again.text
    assert again.json() == body
    [patient] = await ehr.patients_of(lead["id"])
    assert patient.id == body["patient_id"]
    assert await _stored_link(ehr.app, lead) == body["patient_id"]
    read = await ehr.http.get(_url(lead), **_h(owner))
    assert read.status_code == 200
    assert read.json() == body


async def test_the_patient_carries_our_identifier_and_is_a_conditional_create(
    fhir_client: httpx.AsyncClient, fhir_fake: FakeFhir
) -> None:
    owner = await make_member(fhir_client)
    lead = await _won_lead(fhir_client, owner)
    response = await fhir_client.post(_url(lead), **_h(owner))
    assert response.status_code == 201, response.text
    [create] = _creates(fhir_fake)
    assert create.headers["if-none-exist"] == f"identifier={IDENTIFIER_SYSTEM}|{lead['id']}"
    [stored] = fhir_fake.with_identifier(IDENTIFIER_SYSTEM, str(lead["id"]))
    assert stored["id"] == response.json()["patient_id"]
    assert stored["identifier"] == [{"system": IDENTIFIER_SYSTEM, "value": str(lead["id"])}]
    assert stored["telecom"] == [
        {"system": "phone", "value": "+14155550100", "use": "mobile"},
        {"system": "email", "value": "ada@example.com"},
    ]
    assert len(fhir_fake.patients) == 1


async def test_a_lead_without_phone_or_email_becomes_a_patient_with_a_name_only(ehr: Ehr) -> None:
    owner = await make_member(ehr.http)
    lead = await _won_lead(ehr.http, owner, phone=None, email=None)
    response = await ehr.http.post(_url(lead), **_h(owner))
    assert response.status_code == 201, response.text
    assert (response.json()["name"], response.json()["phone"], response.json()["email"]) == (
        "Ada Lovelace",
        None,
        None,
    )


async def test_concurrent_posts_make_one_patient_and_one_link(ehr: Ehr) -> None:
    owner = await make_member(ehr.http)
    lead = await _won_lead(ehr.http, owner)
    if ehr.stand_in:  # every request reaches the EHR before any stores the link
        ehr.stand_in.faults.append(Fault(accept=True, delay=0.3, method="POST", count=4))
    responses = await asyncio.gather(*(ehr.http.post(_url(lead), **_h(owner)) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201], [
        r.text for r in responses
    ]
    assert len({r.json()["patient_id"] for r in responses}) == 1
    [patient] = await ehr.patients_of(lead["id"])
    assert await _stored_link(ehr.app, lead) == patient.id
    if ehr.stand_in:
        assert len(_creates(ehr.stand_in)) == 4  # all four raced past the link check


async def test_get_reads_the_patient_fresh_from_the_ehr(ehr: Ehr) -> None:
    owner = await make_member(ehr.http)
    lead = await _won_lead(ehr.http, owner)
    linked = (await ehr.http.post(_url(lead), **_h(owner))).json()
    # A clinician changes the patient in the EHR; the lead itself stays as it was.
    await ehr.client.update_patient(
        linked["patient_id"],
        version_id="1",
        name="Augusta Ada King",
        phone="+14155550199",
        email=None,
    )
    response = await ehr.http.get(_url(lead), **_h(owner))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["phone"], body["email"]) == (
        "Augusta Ada King",
        "+14155550199",
        None,
    )
    assert body["version_id"] == "2"
    assert datetime.fromisoformat(body["last_updated"]) >= datetime.fromisoformat(
        linked["last_updated"]
    )
    assert datetime.fromisoformat(body["last_updated"]).utcoffset() == UTC.utcoffset(None)
    assert body["patient_id"] == linked["patient_id"]
    lead_now = await ehr.http.get(f"/api/v1/leads/{lead['id']}", **_h(owner))
    assert lead_now.json()["name"] == "Ada Lovelace"
    # A repeated POST answers the patient as it is now too, and still makes none.
    again = await ehr.http.post(_url(lead), **_h(owner))
    assert (again.status_code, again.json()) == (200, body)
    assert len(await ehr.patients_of(lead["id"])) == 1


async def test_another_members_lead_is_404_and_an_admin_may_convert_any(ehr: Ehr) -> None:
    owner = await make_member(ehr.http)
    stranger = await make_member(ehr.http)
    lead = await _won_lead(ehr.http, owner)
    for method in ("POST", "GET"):
        response = await ehr.http.request(method, _url(lead), **_h(stranger))
        assert_error(response, 404, "not_found")
    assert await ehr.patients_of(lead["id"]) == []
    admin = await make_admin(ehr.app, ehr.http)
    converted = await ehr.http.post(_url(lead), **_h(admin))
    assert converted.status_code == 201, converted.text
    assert (await ehr.http.get(_url(lead), **_h(owner))).json() == converted.json()
    missing = await ehr.http.get("/api/v1/leads/999999/ehr-patient", **_h(admin))
    assert_error(missing, 404, "not_found")


async def test_get_before_any_link_is_404_with_its_own_code(ehr: Ehr) -> None:
    owner = await make_member(ehr.http)
    lead = await _won_lead(ehr.http, owner)
    response = await ehr.http.get(_url(lead), **_h(owner))
    body = assert_error(response, 404, "ehr_patient_not_linked")
    assert body["message"] == f"Lead {lead['id']} is not linked to a patient in the EHR."


@pytest.mark.parametrize("status", ["new", "contacted", "qualified", "lost"])
async def test_a_lead_that_is_not_won_is_409_and_reaches_no_ehr(ehr: Ehr, status: str) -> None:
    owner = await make_member(ehr.http)
    lead = await make_lead(ehr.http, owner, **LEAD)
    await ehr.http.patch(f"/api/v1/leads/{lead['id']}", json={"status": status}, **_h(owner))
    response = await ehr.http.post(_url(lead), **_h(owner))
    body = assert_error(response, 409, "lead_not_won")
    assert status in body["message"]
    assert await ehr.patients_of(lead["id"]) == []
    assert _creates(ehr.stand_in) == []
    assert await _stored_link(ehr.app, lead) is None


async def test_the_same_idempotency_key_replays_and_reaches_the_ehr_once(ehr: Ehr) -> None:
    owner = await make_member(ehr.http)
    lead = await _won_lead(ehr.http, owner)
    first = await ehr.http.post(_url(lead), **_h(owner, "convert-1"))
    assert first.status_code == 201, first.text
    replay = await ehr.http.post(_url(lead), **_h(owner, "convert-1"))
    assert (replay.status_code, replay.json()) == (201, first.json())
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(_creates(ehr.stand_in)) == (1 if ehr.stand_in else 0)
    # Another key is another request: the lead is linked by now, so 200, and that replays too.
    other = await ehr.http.post(_url(lead), **_h(owner, "convert-2"))
    assert other.status_code == 200
    replay_other = await ehr.http.post(_url(lead), **_h(owner, "convert-2"))
    assert replay_other.status_code == 200
    assert replay_other.headers["idempotent-replayed"] == "true"
    assert len(await ehr.patients_of(lead["id"])) == 1
    reused = await ehr.http.post(
        f"/api/v1/leads/{lead['id']}/messages", json={"body": "Hi"}, **_h(owner, "convert-1")
    )
    assert_error(reused, 409, "idempotency_key_reused")


# --- the EHR failing (the stand-in's faults) -----------------------------------------------

# fault, our status and code, whether the EHR made the patient before failing
FAULTS = {
    "500": (Fault(status=500, method="POST"), 502, "ehr_error", False),
    "503": (Fault(status=503, count=10), 503, "ehr_unavailable", False),
    "429-long-retry-after": (Fault(status=429, retry_after="7"), 503, "ehr_unavailable", False),
    "dropped": (Fault(drop=True, count=10), 502, "ehr_no_answer", False),
    "timeout": (Fault(delay=1.0, count=10), 502, "ehr_no_answer", True),
    "made-then-500": (Fault(status=500, accept=True, method="POST"), 502, "ehr_error", True),
    "made-then-dropped": (Fault(drop=True, accept=True, count=10), 502, "ehr_no_answer", True),
}


@pytest.mark.parametrize("case", list(FAULTS))
async def test_an_ehr_failure_is_502_or_503_stores_nothing_and_a_retry_links_one_patient(
    fhir_client: httpx.AsyncClient, fhir_app: FastAPI, fhir_fake: FakeFhir, case: str
) -> None:
    fault, status, code, made = FAULTS[case]
    owner = await make_member(fhir_client)
    lead = await _won_lead(fhir_client, owner)
    fhir_fake.faults.append(replace(fault))  # a copy: the stand-in counts its uses down
    failed = await fhir_client.post(_url(lead), **_h(owner, "retry-me"))
    body = assert_error(failed, status, code)
    assert "RAW-UPSTREAM-PAGE" not in body["message"]
    if case == "429-long-retry-after":
        assert failed.headers["retry-after"] == "7"
    assert await _stored_link(fhir_app, lead) is None
    assert_error(await fhir_client.get(_url(lead), **_h(owner)), 404, "ehr_patient_not_linked")
    made_before = {p["id"] for p in fhir_fake.with_identifier(IDENTIFIER_SYSTEM, str(lead["id"]))}
    assert len(made_before) == (1 if made else 0)

    fhir_fake.faults.clear()  # the EHR is back; the client retries with its key
    retried = await fhir_client.post(_url(lead), **_h(owner, "retry-me"))
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    [patient] = fhir_fake.with_identifier(IDENTIFIER_SYSTEM, str(lead["id"]))
    assert retried.json()["patient_id"] == patient["id"]
    assert made_before <= {patient["id"]}
    assert len(fhir_fake.patients) == 1
    assert await _stored_link(fhir_app, lead) == patient["id"]


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault(status=503, count=10, method="GET"), 503, "ehr_unavailable"),
        (Fault(status=500, method="GET"), 502, "ehr_error"),
        (Fault(drop=True, count=10, method="GET"), 502, "ehr_no_answer"),
    ],
    ids=["503", "500", "dropped"],
)
async def test_a_failing_read_is_mapped_and_the_link_stays(
    fhir_client: httpx.AsyncClient,
    fhir_app: FastAPI,
    fhir_fake: FakeFhir,
    fault: Fault,
    status: int,
    code: str,
) -> None:
    owner = await make_member(fhir_client)
    lead = await _won_lead(fhir_client, owner)
    linked = (await fhir_client.post(_url(lead), **_h(owner))).json()
    fhir_fake.faults.append(replace(fault))
    assert_error(await fhir_client.get(_url(lead), **_h(owner)), status, code)
    assert await _stored_link(fhir_app, lead) == linked["patient_id"]


async def test_a_patient_deleted_in_the_ehr_is_404_ehr_resource_deleted(
    fhir_client: httpx.AsyncClient, fhir_fake: FakeFhir
) -> None:
    owner = await make_member(fhir_client)
    lead = await _won_lead(fhir_client, owner)
    linked = (await fhir_client.post(_url(lead), **_h(owner))).json()
    fhir_fake.delete(linked["patient_id"])
    assert_error(await fhir_client.get(_url(lead), **_h(owner)), 404, "ehr_resource_deleted")
    assert_error(await fhir_client.post(_url(lead), **_h(owner)), 404, "ehr_resource_deleted")
    assert fhir_fake.patients == {}  # a linked lead is never made a second patient


async def test_with_the_ehr_off_the_answer_is_503_ehr_not_configured(database_url: str) -> None:
    settings = make_settings(database_url, ehr_provider="none")
    async with running_app(settings) as app, client_for(app) as http:
        try:
            owner = await make_member(http)
            lead = await _won_lead(http, owner)
            assert_error(await http.post(_url(lead), **_h(owner)), 503, "ehr_not_configured")
            assert await _stored_link(app, lead) is None
        finally:
            await clean_database(app)


async def test_while_the_ehr_keeps_failing_the_circuit_answers_503_at_once(
    database_url: str, fhir_fake: FakeFhir
) -> None:
    settings = _stand_in_settings(
        fhir_fake, database_url, fhir_max_retries=0, fhir_circuit_failures=2
    )
    fhir_fake.faults.append(Fault(status=503, count=10, method="POST"))
    async with running_app(settings) as app, client_for(app) as http:
        try:
            owner = await make_member(http)
            lead = await _won_lead(http, owner)
            for _ in range(2):
                assert_error(await http.post(_url(lead), **_h(owner)), 503, "ehr_unavailable")
            paused = await http.post(_url(lead), **_h(owner))
            assert_error(paused, 503, "integration_unavailable")
            assert 1 <= int(paused.headers["retry-after"]) <= 30
            assert len(_creates(fhir_fake)) == 2
        finally:
            await clean_database(app)


# --- logs and the documented contract ------------------------------------------------------


async def test_no_secret_or_personal_field_reaches_a_log_line(
    fhir_client: httpx.AsyncClient, fhir_fake: FakeFhir, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx's, httpcore's, SQLAlchemy's
    # Except aiosqlite's, whose DEBUG lines quote every statement's parameters (any row, not
    # only ours): LOG_LEVEL=DEBUG on SQLite is for a developer's own data.
    caplog.set_level(logging.INFO, logger="aiosqlite")
    owner = await make_member(fhir_client)
    lead = await _won_lead(fhir_client, owner)
    fhir_fake.faults.append(Fault(status=503, method="POST"))  # one retry, logged
    linked = await fhir_client.post(_url(lead), **_h(owner, "log-key"))
    assert linked.status_code == 201, linked.text
    fhir_fake.revoke_tokens()  # a 401, then a new token
    assert (await fhir_client.get(_url(lead), **_h(owner))).status_code == 200
    fhir_fake.faults.append(Fault(status=500, method="GET"))
    assert (await fhir_client.get(_url(lead), **_h(owner))).status_code == 502

    logged = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert "lead linked to an ehr patient" in logged  # the flow did log
    assert "fhir call failed, retrying" in logged
    assert "fhir token refused, fetching a new one" in logged
    assertions = [
        dict(parse_qsl(r.body.decode()))["client_assertion"] for r in fhir_fake.token_requests()
    ]
    pem_lines = [line for line in RSA_KEY.private_pem.splitlines() if "-----" not in line]
    token = owner.headers["Authorization"].removeprefix("Bearer ")
    secrets = [*fhir_fake.issued, *assertions, *pem_lines, token]
    personal = ["Ada", "Lovelace", "4155550100", "ada@example.com", "ada%40example.com"]
    assert len(fhir_fake.issued) == 2
    for value in secrets + personal:
        assert value not in logged, value


async def test_openapi_documents_both_operations_and_their_errors(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    path = spec["paths"]["/api/v1/leads/{lead_id}/ehr-patient"]
    post, get = path["post"], path["get"]
    assert (post["operationId"], get["operationId"]) == ("link_ehr_patient", "read_ehr_patient")
    assert post["tags"] == get["tags"] == ["ehr"]
    assert [p["name"] for p in post["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]
    assert "Idempotent-Replayed" in post["responses"]["201"]["headers"]
    assert {"200", "201"} <= set(post["responses"])
    documented = {status: response["description"] for status, response in post["responses"].items()}
    for status, code in [
        ("404", "not_found"),
        ("409", "lead_not_won"),
        ("409", "idempotency_key_reused"),
        ("409", "idempotency_key_in_use"),
        ("409", "ehr_multiple_matches"),
        ("502", "ehr_error"),
        ("502", "ehr_no_answer"),
        ("502", "ehr_rejected"),
        ("503", "ehr_unavailable"),
        ("503", "integration_unavailable"),
        ("503", "ehr_not_configured"),
    ]:
        assert f"`{code}`" in documented[status], (status, code)
    assert "`ehr_patient_not_linked`" in get["responses"]["404"]["description"]
    assert "`ehr_unavailable`" in get["responses"]["503"]["description"]
    for operation in (post, get):
        schema = json.dumps(operation["responses"]["200"]["content"])
        assert "EhrPatientRead" in schema
