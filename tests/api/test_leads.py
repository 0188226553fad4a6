"""Contract, "Leads": create, read, change, delete, validation and owner scoping."""

import pytest

from tests.assertions import assert_error, error_locations
from tests.conftest import client_for, make_settings, running_app
from tests.factories import make_admin, make_lead, make_member

LEAD_KEYS = {
    "id",
    "name",
    "phone",
    "email",
    "status",
    "source",
    "notes",
    "sms_opted_out",
    "owner_id",
    "created_at",
    "updated_at",
}
SERVER_SET_FIELDS = {
    "id": 7,
    "owner_id": 1,
    "sms_opted_out": True,
    "created_at": "2026-01-05T09:30:00Z",
    "updated_at": "2026-01-05T09:30:00Z",
}
BAD_IDS = ["abc", "1.5", "0", "-1", "1e3", "9223372036854775808", "9" * 40, "%20", "null"]


async def test_create_answers_201_with_the_lead_and_its_location(client):
    member = await make_member(client)
    response = await client.post(
        "/api/v1/leads",
        json={
            "name": "Grace Hopper",
            "phone": "+1 (415) 555-0100",
            "email": "grace@example.com",
            "status": "contacted",
            "source": "website",
            "notes": "Asked for a demo.",
        },
        headers=member.headers,
    )
    assert response.status_code == 201
    lead = response.json()
    assert set(lead) == LEAD_KEYS
    assert response.headers["location"] == f"/api/v1/leads/{lead['id']}"
    assert {key: lead[key] for key in LEAD_KEYS - {"id", "created_at", "updated_at"}} == {
        "name": "Grace Hopper",
        "phone": "+14155550100",
        "email": "grace@example.com",
        "status": "contacted",
        "source": "website",
        "notes": "Asked for a demo.",
        "sms_opted_out": False,
        "owner_id": member.id,
    }
    assert lead["created_at"] == lead["updated_at"]


async def test_a_lead_with_only_a_name_gets_the_defaults(client):
    member = await make_member(client)
    lead = await make_lead(client, member, name="Ada")
    assert (lead["phone"], lead["email"], lead["source"], lead["notes"]) == (None,) * 4
    assert lead["status"] == "new"
    assert lead["sms_opted_out"] is False


async def test_read_answers_the_lead_as_created(client):
    member = await make_member(client)
    lead = await make_lead(client, member, phone="+1 (415) 555-0100")
    response = await client.get(f"/api/v1/leads/{lead['id']}", headers=member.headers)
    assert response.status_code == 200
    assert response.json() == lead


async def test_reading_a_missing_lead_is_404_naming_it(client):
    member = await make_member(client)
    response = await client.get("/api/v1/leads/987654", headers=member.headers)
    body = assert_error(response, 404, "not_found")
    assert body["message"] == "Lead 987654 was not found."


async def test_the_name_is_stripped_of_surrounding_blanks(client):
    member = await make_member(client)
    lead = await make_lead(client, member, name="  Ada Lovelace \t")
    assert lead["name"] == "Ada Lovelace"


async def test_a_name_of_200_characters_is_accepted(client):
    member = await make_member(client)
    lead = await make_lead(client, member, name="n" * 200)
    assert lead["name"] == "n" * 200


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "   "}, {"name": "n" * 201}, {"name": None}],
    ids=["missing", "empty", "blank", "too-long", "null"],
)
async def test_a_missing_empty_long_or_null_name_is_422(client, body):
    member = await make_member(client)
    response = await client.post("/api/v1/leads", json=body, headers=member.headers)
    assert error_locations(response) == [["body", "name"]]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+1 (415) 555-0100", "+14155550100"),
        ("+14155550100", "+14155550100"),
        ("415-555-0100", "+14155550100"),
        ("(415) 555 0100", "+14155550100"),
        ("415.555.0100", "+14155550100"),
        ("+44 20 7946 0958", "+442079460958"),
        ("  +49 30 901820  ", "+4930901820"),
    ],
)
async def test_a_phone_in_a_human_format_is_stored_as_e164(client, typed, stored):
    member = await make_member(client)
    lead = await make_lead(client, member, phone=typed)
    assert lead["phone"] == stored


@pytest.mark.parametrize(
    "phone", ["", "   ", "12345", "not a phone", "+1 (415) 555-010", "020 7946 0958", "9" * 41]
)
async def test_an_invalid_or_empty_phone_is_422(client, phone):
    member = await make_member(client)
    response = await client.post(
        "/api/v1/leads", json={"name": "Ada", "phone": phone}, headers=member.headers
    )
    assert error_locations(response) == [["body", "phone"]]


async def test_a_phone_without_country_code_is_read_in_the_default_region(database_url, client):
    settings = make_settings(database_url, default_phone_region="GB")
    async with running_app(settings) as app, client_for(app) as http:
        member = await make_member(http)
        lead = await make_lead(http, member, phone="020 7946 0958")
        patched = await http.patch(
            f"/api/v1/leads/{lead['id']}", json={"phone": "07911 123456"}, headers=member.headers
        )
    assert lead["phone"] == "+442079460958"
    assert patched.json()["phone"] == "+447911123456"


async def test_a_valid_email_is_accepted(client):
    member = await make_member(client)
    lead = await make_lead(client, member, email="grace.hopper+leads@example.com")
    assert lead["email"] == "grace.hopper+leads@example.com"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", ""),
        ("source", "s" * 101),
        ("notes", "n" * 5001),
        ("status", "open"),
        ("status", None),
        ("status", "NEW"),
    ],
)
async def test_an_invalid_field_value_is_422(client, field, value):
    member = await make_member(client)
    response = await client.post(
        "/api/v1/leads", json={"name": "Ada", field: value}, headers=member.headers
    )
    assert error_locations(response) == [["body", field]]


async def test_source_and_notes_at_their_maximum_length_are_accepted(client):
    member = await make_member(client)
    lead = await make_lead(client, member, source="s" * 100, notes="n" * 5000)
    assert (len(lead["source"]), len(lead["notes"])) == (100, 5000)


@pytest.mark.parametrize("status", ["new", "contacted", "qualified", "won", "lost"])
async def test_every_status_is_accepted(client, status):
    member = await make_member(client)
    lead = await make_lead(client, member, status=status)
    assert lead["status"] == status


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 123),
        ("name", True),
        ("name", ["Ada"]),
        ("phone", 14155550100),
        ("email", 5),
        ("source", 1.5),
        ("notes", False),
        ("status", 1),
    ],
)
async def test_a_value_of_the_wrong_json_type_is_422(client, field, value):
    member = await make_member(client)
    body = {"name": "Ada", field: value}
    response = await client.post("/api/v1/leads", json=body, headers=member.headers)
    assert error_locations(response) == [["body", field]]


@pytest.mark.parametrize("field", ["colour", *SERVER_SET_FIELDS])
async def test_an_unknown_or_server_set_field_on_create_is_422(client, field):
    member = await make_member(client)
    body = {"name": "Ada", field: SERVER_SET_FIELDS.get(field, "red")}
    response = await client.post("/api/v1/leads", json=body, headers=member.headers)
    assert error_locations(response) == [["body", field]]


@pytest.mark.parametrize("field", ["colour", *SERVER_SET_FIELDS])
async def test_an_unknown_or_server_set_field_on_update_is_422(client, field):
    member = await make_member(client)
    lead = await make_lead(client, member)
    response = await client.patch(
        f"/api/v1/leads/{lead['id']}",
        json={field: SERVER_SET_FIELDS.get(field, "red")},
        headers=member.headers,
    )
    assert error_locations(response) == [["body", field]]


async def test_update_changes_only_the_fields_sent(client):
    member = await make_member(client)
    lead = await make_lead(client, member, phone="+14155550100", notes="Call back.")
    response = await client.patch(
        f"/api/v1/leads/{lead['id']}",
        json={"status": "won", "email": "ada@example.com"},
        headers=member.headers,
    )
    assert response.status_code == 200
    updated = response.json()
    assert {**updated, "updated_at": None} == {
        **lead,
        "status": "won",
        "email": "ada@example.com",
        "updated_at": None,
    }


async def test_update_moves_updated_at_forward_and_keeps_created_at(client):
    member = await make_member(client)
    lead = await make_lead(client, member)
    response = await client.patch(
        f"/api/v1/leads/{lead['id']}", json={"notes": "x"}, headers=member.headers
    )
    updated = response.json()
    assert updated["created_at"] == lead["created_at"]
    assert updated["updated_at"] > lead["updated_at"]


@pytest.mark.parametrize("field", ["phone", "email", "source", "notes"])
async def test_update_with_null_clears_an_optional_field(client, field):
    member = await make_member(client)
    lead = await make_lead(
        client,
        member,
        phone="+14155550100",
        email="ada@example.com",
        source="web",
        notes="Met at a fair.",
    )
    response = await client.patch(
        f"/api/v1/leads/{lead['id']}", json={field: None}, headers=member.headers
    )
    assert response.status_code == 200
    assert response.json()[field] is None
    again = await client.get(f"/api/v1/leads/{lead['id']}", headers=member.headers)
    assert again.json()[field] is None


@pytest.mark.parametrize("field", ["name", "status"])
async def test_update_refuses_null_for_name_and_status(client, field):
    member = await make_member(client)
    lead = await make_lead(client, member)
    response = await client.patch(
        f"/api/v1/leads/{lead['id']}", json={field: None}, headers=member.headers
    )
    assert error_locations(response) == [["body", field]]


async def test_update_normalises_the_phone(client):
    member = await make_member(client)
    lead = await make_lead(client, member)
    response = await client.patch(
        f"/api/v1/leads/{lead['id']}", json={"phone": "(415) 555-0100"}, headers=member.headers
    )
    assert response.json()["phone"] == "+14155550100"


async def test_a_refused_update_changes_nothing(client):
    member = await make_member(client)
    lead = await make_lead(client, member, phone="+14155550100")
    response = await client.patch(
        f"/api/v1/leads/{lead['id']}",
        json={"name": "Changed", "phone": "12345"},
        headers=member.headers,
    )
    assert error_locations(response) == [["body", "phone"]]
    again = await client.get(f"/api/v1/leads/{lead['id']}", headers=member.headers)
    assert again.json() == lead


async def test_an_empty_update_changes_no_field(client):
    member = await make_member(client)
    lead = await make_lead(client, member)
    response = await client.patch(f"/api/v1/leads/{lead['id']}", json={}, headers=member.headers)
    assert response.status_code == 200
    assert {**response.json(), "updated_at": None} == {**lead, "updated_at": None}


async def test_updating_a_missing_lead_is_404(client):
    member = await make_member(client)
    response = await client.patch(
        "/api/v1/leads/987654", json={"name": "X"}, headers=member.headers
    )
    assert_error(response, 404, "not_found")


async def test_delete_answers_204_with_an_empty_body_and_the_lead_is_gone(client):
    member = await make_member(client)
    lead = await make_lead(client, member)
    response = await client.delete(f"/api/v1/leads/{lead['id']}", headers=member.headers)
    assert response.status_code == 204
    assert response.content == b""
    again = await client.get(f"/api/v1/leads/{lead['id']}", headers=member.headers)
    assert_error(again, 404, "not_found")


async def test_deleting_a_missing_lead_is_404(client):
    member = await make_member(client)
    response = await client.delete("/api/v1/leads/987654", headers=member.headers)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_another_members_lead_answers_exactly_as_a_missing_one(client, method):
    owner = await make_member(client)
    other = await make_member(client)
    lead = await make_lead(client, owner)
    missing_id = lead["id"] + 1000
    body = {"json": {"name": "Taken over"}} if method == "PATCH" else {}
    foreign = await client.request(
        method, f"/api/v1/leads/{lead['id']}", headers=other.headers, **body
    )
    missing = await client.request(
        method, f"/api/v1/leads/{missing_id}", headers=other.headers, **body
    )
    assert assert_error(foreign, 404, "not_found") == {
        "code": "not_found",
        "message": f"Lead {lead['id']} was not found.",
        "details": None,
        "request_id": foreign.headers["x-request-id"],
    }
    assert assert_error(missing, 404, "not_found") == {
        "code": "not_found",
        "message": f"Lead {missing_id} was not found.",
        "details": None,
        "request_id": missing.headers["x-request-id"],
    }
    assert set(foreign.headers) == set(missing.headers)
    still = await client.get(f"/api/v1/leads/{lead['id']}", headers=owner.headers)
    assert still.json() == lead


async def test_an_admin_reads_changes_and_deletes_a_members_lead(app, client):
    admin = await make_admin(app, client)
    member = await make_member(client)
    lead = await make_lead(client, member)
    url = f"/api/v1/leads/{lead['id']}"
    assert (await client.get(url, headers=admin.headers)).json() == lead
    patched = await client.patch(url, json={"status": "won"}, headers=admin.headers)
    assert patched.json()["status"] == "won"
    assert patched.json()["owner_id"] == member.id
    assert (await client.delete(url, headers=admin.headers)).status_code == 204


@pytest.mark.parametrize("lead_id", BAD_IDS)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_a_malformed_or_huge_id_is_404_or_422(client, method, lead_id):
    member = await make_member(client)
    body = {"json": {"name": "X"}} if method == "PATCH" else {}
    response = await client.request(
        method, f"/api/v1/leads/{lead_id}", headers=member.headers, **body
    )
    code = {404: "not_found", 422: "validation_error"}.get(response.status_code)
    assert code, response.text
    assert_error(response, response.status_code, code)


async def test_the_largest_id_is_a_plain_404(client):
    member = await make_member(client)
    response = await client.get(f"/api/v1/leads/{2**63 - 1}", headers=member.headers)
    assert_error(response, 404, "not_found")
