"""The FHIR client against the FHIR stand-in, over real HTTP: resources, paging, faults."""

import itertools
import json
import socket
import time
from datetime import datetime

import pytest

from backend.app.core.errors import (
    CircuitOpenError,
    EhrError,
    EhrMultipleMatchesError,
    EhrNoAnswerError,
    EhrRequestRejectedError,
    EhrResourceDeletedError,
    EhrResourceNotFoundError,
    EhrUnavailableError,
    EhrVersionConflictError,
)
from backend.app.integrations.fhir import PatientRecord
from tests.fakes.fhir_fake import STATIC_TOKEN, Fault
from tests.fakes.fhir_fixtures import IDENTIFIER_SYSTEM, fhir_settings, open_fhir_client

PATIENT = {
    "identifier_system": IDENTIFIER_SYSTEM,
    "identifier_value": "42",
    "name": "Ada Lovelace",
    "phone": "+14155550100",
    "email": "ada@example.com",
}


def _settings(fake, **overrides):
    """Static-token settings: these tests are about the FHIR calls, not the token."""
    values = {"fhir_access_token": STATIC_TOKEN, "fhir_max_retry_wait_seconds": 0.2, **overrides}
    return fhir_settings(fake, **values)


def _with_identifier(value: str, family: str = "Smith") -> dict:
    return {
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": value}],
        "name": [{"family": family, "given": [f"Pat{value}"]}],
    }


async def test_ensure_patient_is_a_conditional_create_in_fhir_json(fhir_fake):
    async with open_fhir_client(_settings(fhir_fake)) as client:
        record = await client.ensure_patient(**PATIENT)
    [create] = fhir_fake.fhir_requests("POST")
    assert create.path == "/fhir/Patient"
    assert create.headers["if-none-exist"] == f"identifier={IDENTIFIER_SYSTEM}|42"
    assert create.headers["content-type"] == "application/fhir+json"
    assert create.headers["accept"] == "application/fhir+json"
    assert json.loads(create.body) == {
        "resourceType": "Patient",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": "42"}],
        "name": [
            {"use": "official", "text": "Ada Lovelace", "family": "Lovelace", "given": ["Ada"]}
        ],
        "telecom": [
            {"system": "phone", "value": "+14155550100", "use": "mobile"},
            {"system": "email", "value": "ada@example.com"},
        ],
    }
    stored = fhir_fake.patients[record.id]
    assert record == PatientRecord(
        id=stored["id"],
        version_id="1",
        last_updated=datetime.fromisoformat(stored["meta"]["lastUpdated"]),
        name="Ada Lovelace",
        phone="+14155550100",
        email="ada@example.com",
    )
    assert record.reference == f"Patient/{record.id}"
    assert record.last_updated is not None
    assert record.last_updated.utcoffset().total_seconds() == 0


async def test_blank_fields_are_left_out_never_sent_empty(fhir_fake):
    blank = {**PATIENT, "name": "  ", "phone": "", "email": None}
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrRequestRejectedError) as caught:
            await client.ensure_patient(**blank)
    [create] = fhir_fake.fhir_requests("POST")
    assert set(json.loads(create.body)) == {"resourceType", "identifier"}
    assert caught.value.message.endswith("Patient.name: minimum required = 1, but only found 0.")


async def test_ensure_patient_again_returns_the_same_patient_unchanged(fhir_fake):
    async with open_fhir_client(_settings(fhir_fake)) as client:
        first = await client.ensure_patient(**PATIENT)
        again = await client.ensure_patient(**{**PATIENT, "name": "Someone Else"})
        other = await client.ensure_patient(**{**PATIENT, "identifier_value": "43"})
    assert again == first
    assert other.id != first.id
    assert len(fhir_fake.with_identifier(IDENTIFIER_SYSTEM, "42")) == 1
    assert len(fhir_fake.patients) == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault(accept=True, delay=1.0, method="POST"),  # our timeout: the answer is lost
        Fault(accept=True, drop=True, method="POST"),  # made, then the connection dropped
        Fault(accept=True, status=503, method="POST"),  # made, then a gateway said 503
    ],
    ids=["timeout", "dropped", "503"],
)
async def test_a_retried_conditional_create_makes_no_second_patient(fhir_fake, fault):
    fhir_fake.faults.append(fault)
    async with open_fhir_client(_settings(fhir_fake, fhir_timeout_seconds=0.3)) as client:
        record = await client.ensure_patient(**PATIENT)
    assert len(fhir_fake.fhir_requests("POST")) == 2
    assert [p["id"] for p in fhir_fake.with_identifier(IDENTIFIER_SYSTEM, "42")] == [record.id]


async def test_a_plain_create_is_never_repeated_once_it_may_have_been_applied(fhir_fake):
    fhir_fake.faults.append(Fault(accept=True, delay=1.0, method="POST"))
    body = {"resourceType": "Patient", "name": [{"family": "Plain"}]}
    started = time.monotonic()
    async with open_fhir_client(_settings(fhir_fake, fhir_timeout_seconds=0.3)) as client:
        with pytest.raises(EhrNoAnswerError):
            await client.create(body)
        fhir_fake.faults.append(Fault(status=503, method="POST"))
        with pytest.raises(EhrUnavailableError):
            await client.create(body)
    assert time.monotonic() - started < 1.0
    assert len(fhir_fake.fhir_requests("POST")) == 2  # one try each


async def test_a_plain_create_refused_with_429_is_retried(fhir_fake):
    fhir_fake.faults.append(Fault(status=429, retry_after="0", method="POST"))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        created = await client.create({"resourceType": "Patient", "name": [{"family": "X"}]})
    assert created.created
    assert created.version_id == "1"
    assert len(fhir_fake.fhir_requests("POST")) == 2
    assert list(fhir_fake.patients) == [created.id]


async def test_read_tells_unknown_from_deleted(fhir_fake):
    gone = fhir_fake.add_patient(_with_identifier("1"))["id"]
    fhir_fake.delete(gone)
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrResourceNotFoundError) as unknown:
            await client.read_patient("unknown1")
        with pytest.raises(EhrResourceDeletedError) as deleted:
            await client.read_patient(gone)
        with pytest.raises(EhrResourceNotFoundError):
            await client.read_patient("../Observation/1")  # never sent
    assert type(unknown.value) is EhrResourceNotFoundError
    assert unknown.value.message == "The EHR has no such resource: Patient/unknown1 is not known."
    assert (
        deleted.value.message == f"The resource was deleted in the EHR: Patient/{gone} was deleted."
    )
    assert (unknown.value.outcome_code, deleted.value.outcome_code) == ("not-found", "deleted")
    assert len(fhir_fake.fhir_requests("GET")) == 2


async def test_search_follows_next_links_to_the_end(fhir_fake):
    ids = {fhir_fake.add_patient(_with_identifier(str(n)))["id"] for n in range(7)}
    fhir_fake.add_patient(_with_identifier("99", family="Jones"))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        found = await client.search("Patient", {"name": "smith", "_count": "3"})
    assert {r["id"] for r in found.resources} == ids
    assert (len(found.resources), found.total, found.truncated) == (7, 7, False)
    gets = fhir_fake.fhir_requests("GET")
    assert [g.path for g in gets] == ["/fhir/Patient", "/fhir", "/fhir"]
    assert gets[0].query == "name=smith&_count=3"
    assert "_getpagesoffset=3" in gets[1].query
    assert "_getpagesoffset=6" in gets[2].query


async def test_search_stops_at_the_page_limit(fhir_fake):
    for n in range(7):
        fhir_fake.add_patient(_with_identifier(str(n)))
    async with open_fhir_client(_settings(fhir_fake, fhir_max_search_pages=2)) as client:
        found = await client.search("Patient", {"name": "smith", "_count": "3"})
        one = await client.search("Patient", {"name": "smith", "_count": "3"}, max_pages=1)
    assert (len(found.resources), found.total, found.truncated) == (6, 7, True)
    assert (len(one.resources), one.truncated) == (3, True)
    assert len(fhir_fake.fhir_requests("GET")) == 3


async def test_a_next_link_outside_the_base_url_is_not_followed(fhir_fake):
    for n in range(4):
        fhir_fake.add_patient(_with_identifier(str(n)))
    fhir_fake.next_link_base = "http://127.0.0.1:9/elsewhere"
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrError, match="outside its base URL"):
            await client.search("Patient", {"name": "smith", "_count": "2"})
    assert len(fhir_fake.fhir_requests("GET")) == 1


async def test_find_patients_searches_by_identifier(fhir_fake):
    wanted = fhir_fake.add_patient(_with_identifier("42"))["id"]
    fhir_fake.add_patient(_with_identifier("43"))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        found = await client.find_patients(
            identifier_system=IDENTIFIER_SYSTEM, identifier_value="42"
        )
        none = await client.find_patients(identifier_system="urn:other", identifier_value="42")
    assert [r.id for r in found] == [wanted]
    assert none == []
    assert fhir_fake.fhir_requests("GET")[0].query == (
        "identifier=https%3A%2F%2Fcrm.example-clinic.test%2Fids%2Flead%7C42"
    )


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_transient_status_on_a_read_is_retried(fhir_fake, status):
    patient_id = fhir_fake.add_patient(_with_identifier("1"))["id"]
    fhir_fake.faults.append(Fault(status=status, method="GET"))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        assert (await client.read_patient(patient_id)).id == patient_id
    assert len(fhir_fake.fhir_requests("GET")) == 2


async def test_429_is_retried_no_sooner_than_retry_after(fhir_fake):
    patient_id = fhir_fake.add_patient(_with_identifier("1"))["id"]
    fhir_fake.faults.append(Fault(status=429, retry_after="1", method="GET", count=2))
    settings = _settings(fhir_fake, fhir_max_retry_wait_seconds=1.5)
    async with open_fhir_client(settings) as client:
        await client.read_patient(patient_id)
    gets = fhir_fake.fhir_requests("GET")
    assert len(gets) == 3
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(gets)]
    assert all(gap >= 0.95 for gap in gaps), gaps


async def test_a_retry_after_beyond_the_wait_cap_is_answered_at_once(fhir_fake):
    fhir_fake.faults.append(Fault(status=429, retry_after="30", method="GET"))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrUnavailableError) as caught:
            await client.read_patient("abc")
    assert (caught.value.status, caught.value.retry_after) == (429, 30.0)
    assert len(fhir_fake.fhir_requests("GET")) == 1


async def test_a_lasting_outage_gives_up_as_unavailable(fhir_fake):
    fhir_fake.faults.append(Fault(status=503, method="GET", count=10, text="Down for upkeep"))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrUnavailableError) as caught:
            await client.read_patient("abc")
    assert caught.value.message == "The EHR is unavailable (HTTP 503): Down for upkeep"
    assert len(fhir_fake.fhir_requests("GET")) == 3


async def test_500_is_not_retried_and_carries_the_outcome_text(fhir_fake):
    fhir_fake.faults.append(Fault(status=500, method="GET", text="NullPointerException"))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrError) as caught:
            await client.read_patient("abc")
    assert type(caught.value) is EhrError
    assert caught.value.message == "The EHR failed (HTTP 500): NullPointerException"
    assert (caught.value.status, caught.value.outcome_code) == (500, "transient")
    assert len(fhir_fake.fhir_requests("GET")) == 1


async def test_a_raw_error_page_never_reaches_our_message(fhir_fake):
    fhir_fake.faults.append(Fault(status=500, html=True, method="GET"))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrError) as caught:
            await client.read_patient("abc")
    assert caught.value.message == "The EHR failed (HTTP 500)."


async def test_dropped_connection_on_a_read_is_retried(fhir_fake):
    patient_id = fhir_fake.add_patient(_with_identifier("1"))["id"]
    fhir_fake.faults.append(Fault(drop=True, method="GET"))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        assert (await client.read_patient(patient_id)).id == patient_id
    assert len(fhir_fake.fhir_requests("GET")) == 2


async def test_a_read_that_keeps_timing_out_ends_without_an_answer(fhir_fake):
    fhir_fake.faults.append(Fault(delay=2.0, method="GET", count=5))
    started = time.monotonic()
    settings = _settings(fhir_fake, fhir_timeout_seconds=0.3, fhir_max_retries=1)
    async with open_fhir_client(settings) as client:
        with pytest.raises(EhrNoAnswerError):
            await client.read_patient("abc")
    assert time.monotonic() - started < 1.5
    assert len(fhir_fake.fhir_requests("GET")) == 2


async def test_connection_refused_is_retried_then_unavailable(fhir_fake):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = _settings(fhir_fake, fhir_base_url=f"http://127.0.0.1:{closed_port}/fhir")
    async with open_fhir_client(settings) as client:
        with pytest.raises(EhrUnavailableError) as caught:
            await client.create({"resourceType": "Patient", "name": [{"family": "X"}]})
    assert caught.value.status is None
    assert "unreachable" in caught.value.message


async def test_update_is_conditional_on_the_version_and_keeps_other_fields(fhir_fake):
    stored = fhir_fake.add_patient({**_with_identifier("1"), "birthDate": "1815-12-10"})
    async with open_fhir_client(_settings(fhir_fake)) as client:
        updated = await client.update_patient(
            stored["id"], version_id="1", name="Ada King", phone=None, email="ada@king.example"
        )
    [put] = fhir_fake.fhir_requests("PUT")
    assert put.headers["if-match"] == 'W/"1"'
    assert put.headers["content-type"] == "application/fhir+json"
    assert (updated.version_id, updated.name, updated.phone, updated.email) == (
        "2",
        "Ada King",
        None,
        "ada@king.example",
    )
    now = fhir_fake.patients[stored["id"]]
    assert (now["birthDate"], now["identifier"]) == ("1815-12-10", stored["identifier"])


async def test_a_stale_version_is_a_conflict_and_overwrites_nothing(fhir_fake):
    stored = fhir_fake.add_patient(_with_identifier("1"))
    fhir_fake.touch(stored["id"])  # changed in the EHR since we read version 1
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrVersionConflictError):
            await client.update_patient(
                stored["id"], version_id="1", name="Mine", phone=None, email=None
            )
        fhir_fake.faults.append(Fault(stale=True, method="PUT"))  # changed between read and PUT
        with pytest.raises(EhrVersionConflictError) as raced:
            await client.update_patient(
                stored["id"], version_id="2", name="Mine", phone=None, email=None
            )
    assert raced.value.message == "The EHR record changed since it was read: Version 3 is current."
    assert len(fhir_fake.fhir_requests("PUT")) == 1  # the first was stopped before sending
    assert fhir_fake.patients[stored["id"]]["name"] == stored["name"]


async def test_an_update_is_not_retried_after_a_503(fhir_fake):
    stored = fhir_fake.add_patient(_with_identifier("1"))
    fhir_fake.faults.append(Fault(status=503, method="PUT", count=3))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrUnavailableError):
            await client.update({**stored, "gender": "female"}, version_id="1")
    assert len(fhir_fake.fhir_requests("PUT")) == 1


async def test_a_refused_resource_carries_the_outcome_text_not_the_body(fhir_fake):
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrRequestRejectedError) as caught:
            await client.create(
                {"resourceType": "Patient", "name": [{"family": "X"}], "birthDate": "1970-13-01"}
            )
    assert caught.value.message == (
        "The EHR refused the create (HTTP 422): "
        "Patient.birthDate: '1970-13-01' is not a valid date."
    )
    assert (caught.value.status, caught.value.outcome_code) == (422, "invalid")
    assert "RAW-BODY-ONLY" not in str(caught.value)
    assert len(fhir_fake.fhir_requests("POST")) == 1


async def test_several_patients_with_the_identifier_is_a_conflict(fhir_fake):
    fhir_fake.add_patient(_with_identifier("42"))
    fhir_fake.add_patient(_with_identifier("42"))
    async with open_fhir_client(_settings(fhir_fake)) as client:
        with pytest.raises(EhrMultipleMatchesError):
            await client.ensure_patient(**PATIENT)
    assert len(fhir_fake.patients) == 2


async def test_a_write_answered_without_a_body_is_read_back(fhir_fake):
    fhir_fake.ignore_prefer = True
    async with open_fhir_client(_settings(fhir_fake)) as client:
        record = await client.ensure_patient(**PATIENT)
    assert (record.name, record.version_id) == ("Ada Lovelace", "1")
    assert [(r.method, r.path) for r in fhir_fake.fhir_requests()] == [
        ("POST", "/fhir/Patient"),
        ("GET", f"/fhir/Patient/{record.id}"),
    ]


async def test_the_circuit_opens_after_repeated_outages(fhir_fake):
    fhir_fake.faults.append(Fault(status=503, method="GET", count=10))
    settings = _settings(fhir_fake, fhir_max_retries=0, fhir_circuit_failures=2)
    async with open_fhir_client(settings) as client:
        for _ in range(2):
            with pytest.raises(EhrUnavailableError):
                await client.read_patient("abc")
        with pytest.raises(CircuitOpenError) as caught:
            await client.read_patient("abc")
    assert caught.value.retry_after == 30
    assert len(fhir_fake.fhir_requests("GET")) == 2
