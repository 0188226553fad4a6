"""Hostile input: NUL and control characters, values beyond the database's range, forged
token subjects. Every one is a 422 (a 400 or 401 where the contract says so), never a 500,
on both backends.
"""

import json
from datetime import UTC, datetime, timedelta, timezone

import jwt
import pytest

from backend.app.integrations.stripe import sign_payload
from tests.assertions import assert_error, error_locations
from tests.factories import make_admin, make_lead, make_member
from tests.fakes.twilio_fake import FakeTwilio

NUL = "a\x00b"
PUBLIC = "http://127.0.0.1:8000"  # PUBLIC_BASE_URL of the test app (the default)
TWILIO = FakeTwilio()  # signs with the test app's TWILIO_AUTH_TOKEN
BEYOND_BIGINT = 2**63


# example:lead start
async def _lead_with_phone(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone="+14155550100")
    return owner, lead


# example:lead end


async def test_login_with_nul_in_the_email_is_422_without_a_token(client):
    response = await client.post(
        "/api/v1/auth/token", data={"username": "a\x00b@example.com", "password": "x" * 10}
    )
    assert error_locations(response) == [["body", "username"]]


async def test_register_with_nul_in_the_name_is_422_without_a_token(client):
    body = {"email": "nul@example.com", "password": "long enough", "full_name": NUL}
    response = await client.post("/api/v1/auth/register", json=body)
    assert error_locations(response) == [["body", "full_name"]]


# example:lead start
@pytest.mark.parametrize("q", ["\x00", "a\x00", "line\nbreak"])
async def test_search_with_control_characters_is_422(client, q):
    owner = await make_member(client)
    response = await client.get("/api/v1/leads", params={"q": q}, headers=owner.headers)
    assert error_locations(response) == [["query", "q"]]


@pytest.mark.parametrize("field", ["name", "notes", "source"])
async def test_lead_text_with_nul_is_422_on_create_and_patch(client, field):
    owner = await make_member(client)
    created = await client.post(
        "/api/v1/leads", json={"name": "Ada", field: NUL}, headers=owner.headers
    )
    assert error_locations(created) == [["body", field]]
    lead = await make_lead(client, owner)
    patched = await client.patch(
        f"/api/v1/leads/{lead['id']}", json={field: NUL}, headers=owner.headers
    )
    assert error_locations(patched) == [["body", field]]


@pytest.mark.parametrize("field", ["name", "source"])
@pytest.mark.parametrize("control", ["\n", "\t", "\x1b", "\x7f"])
async def test_single_line_fields_refuse_control_characters(client, field, control):
    owner = await make_member(client)
    response = await client.post(
        "/api/v1/leads", json={"name": "Ada", field: f"x{control}y"}, headers=owner.headers
    )
    assert error_locations(response) == [["body", field]]


async def test_multi_line_notes_keep_newlines_and_tabs(client):
    owner = await make_member(client)
    notes = "Called twice.\n\tNo answer.\r\n"
    lead = await make_lead(client, owner, notes=notes)
    assert lead["notes"] == notes


async def test_message_body_with_nul_is_422(client):
    owner, lead = await _lead_with_phone(client)
    response = await client.post(
        f"/api/v1/leads/{lead['id']}/messages", json={"body": NUL}, headers=owner.headers
    )
    assert error_locations(response) == [["body", "body"]]


async def test_payment_description_with_nul_is_422(client):
    owner, lead = await _lead_with_phone(client)
    body = {"amount": 500, "currency": "usd", "description": NUL}
    response = await client.post(
        f"/api/v1/leads/{lead['id']}/payments", json=body, headers=owner.headers
    )
    assert error_locations(response) == [["body", "description"]]


# example:lead end


async def test_user_full_name_with_nul_is_422_on_patch(client, app):
    admin = await make_admin(app, client)
    member = await make_member(client)
    response = await client.patch(
        f"/api/v1/users/{member.id}", json={"full_name": NUL}, headers=admin.headers
    )
    assert error_locations(response) == [["body", "full_name"]]


async def _list_paths(client, lead_id: int) -> list[str]:
    """Every GET operation that takes `offset`, with its path parameters filled in."""
    spec = (await client.get("/openapi.json")).json()
    paths = []
    for path, operations in spec["paths"].items():
        parameters = operations.get("get", {}).get("parameters", [])
        if any(p["name"] == "offset" for p in parameters):
            paths.append(path.replace("{lead_id}", str(lead_id)))
    return paths


async def test_every_list_refuses_an_offset_beyond_64_bits(client, app):
    admin = await make_admin(app, client)
    lead_id = 0
    # example:lead start
    lead_id = (await make_lead(client, admin))["id"]
    # example:lead end
    paths = await _list_paths(client, lead_id)
    assert len(paths) >= 2
    for path in paths:
        response = await client.get(
            path, params={"offset": str(BEYOND_BIGINT)}, headers=admin.headers
        )
        assert error_locations(response) == [["query", "offset"]], path
        largest = await client.get(
            path, params={"offset": str(BEYOND_BIGINT - 1)}, headers=admin.headers
        )
        assert largest.status_code == 200, path
        assert largest.json()["items"] == []


# example:lead start
@pytest.mark.parametrize(
    "send_at",
    ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "+10000-01-01T00:00:00Z"],
)
async def test_send_at_beyond_the_range_of_a_utc_timestamp_is_422(client, send_at):
    owner, lead = await _lead_with_phone(client)
    response = await client.post(
        f"/api/v1/leads/{lead['id']}/messages",
        json={"body": "Hi", "send_at": send_at},
        headers=owner.headers,
    )
    assert error_locations(response) == [["body", "send_at"]]


async def test_send_at_is_returned_in_utc_whatever_offset_was_sent(client):
    owner, lead = await _lead_with_phone(client)
    in_two_days = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    in_pacific = in_two_days.astimezone(timezone(timedelta(hours=-8)))
    response = await client.post(
        f"/api/v1/leads/{lead['id']}/messages",
        json={"body": "Hi", "send_at": in_pacific.isoformat()},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    returned = response.json()["send_at"]
    assert returned.endswith(("Z", "+00:00"))
    assert datetime.fromisoformat(returned) == in_pacific
    listed = await client.get(f"/api/v1/leads/{lead['id']}/messages", headers=owner.headers)
    assert listed.json()["items"][0]["send_at"].endswith(("Z", "+00:00"))


# example:lead end


async def _twilio_post(client, path, params, query=""):
    url = f"{PUBLIC}{path}{query}"
    headers = {"X-Twilio-Signature": TWILIO.sign(url, params)}
    return await client.post(f"{path}{query}", data=params, headers=headers)


async def test_signed_twilio_callback_with_an_id_beyond_64_bits_is_422(client):
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered"}
    response = await _twilio_post(
        client, "/api/v1/webhooks/twilio/status", params, query=f"?message_id={BEYOND_BIGINT}"
    )
    assert error_locations(response) == [["query", "message_id"]]


@pytest.mark.parametrize("field", ["MessageSid", "From", "Body"])
async def test_signed_twilio_inbound_with_nul_is_422(client, field):
    params = {"MessageSid": "SM" + "b" * 32, "From": "+14155550100", "Body": "hello"}
    params[field] = f"x{NUL}"
    response = await _twilio_post(client, "/api/v1/webhooks/twilio/inbound", params)
    assert error_locations(response) == [["body", field]]


async def test_signed_twilio_callback_with_nul_in_the_sid_is_422(client):
    params = {"MessageSid": f"SM{NUL}", "MessageStatus": "delivered"}
    response = await _twilio_post(client, "/api/v1/webhooks/twilio/status", params)
    assert error_locations(response) == [["body", "MessageSid"]]


def _stripe_event(event_id: str) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": {"object": "checkout.session", "id": "cs_test_x"}},
    }


@pytest.mark.parametrize("event_id", ["evt_" + "x" * 252, f"evt_{NUL}"])
async def test_signed_stripe_event_with_an_unstorable_id_is_400(client, app, event_id):
    payload = json.dumps(_stripe_event(event_id))
    secret = app.state.settings.stripe_webhook_secret.get_secret_value()
    response = await client.post(
        "/api/v1/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign_payload(payload, secret)},
    )
    assert_error(response, 400, "invalid_payload")


async def test_a_stripe_event_id_of_255_characters_is_stored(client, app):
    payload = json.dumps(_stripe_event("evt_" + "x" * 251))
    secret = app.state.settings.stripe_webhook_secret.get_secret_value()
    response = await client.post(
        "/api/v1/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign_payload(payload, secret)},
    )
    assert response.status_code == 200, response.text


def _token(app, subject: str) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {"sub": subject, "iat": now, "exp": now + timedelta(minutes=5), "type": "access"}
    secret = app.state.settings.secret_key.get_secret_value()
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"}


@pytest.mark.parametrize(
    "subject", ["99999999999999999999", str(BEYOND_BIGINT), "0", "-1", " 1", "1\x00", "01"]
)
async def test_a_signed_token_whose_subject_is_not_a_user_id_is_401(client, app, subject):
    await make_member(client)
    response = await client.get("/api/v1/users/me", headers=_token(app, subject))
    assert_error(response, 401, "unauthorized")


async def test_a_subject_in_other_digits_is_not_read_as_a_user_id(client, app):
    member = await make_member(client)
    # the member's id in Arabic-Indic digits, which int() would read as that id
    arabic_indic = "".join(chr(0x0660 + int(digit)) for digit in str(member.id))
    assert int(arabic_indic) == member.id
    response = await client.get("/api/v1/users/me", headers=_token(app, arabic_indic))
    assert_error(response, 401, "unauthorized")


async def test_a_signed_token_with_an_ascii_subject_still_works(client, app):
    owner = await make_member(client)
    response = await client.get("/api/v1/users/me", headers=_token(app, str(owner.id)))
    assert response.status_code == 200
    assert response.json()["id"] == owner.id


async def test_openapi_states_the_text_rules_as_patterns(client):
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]

    def pattern_of(schema: dict) -> str | None:
        for option in schema.get("anyOf", [schema]):
            if "pattern" in option:
                return option["pattern"]
        return None

    for model, field in [
        # example:lead start
        ("LeadCreate", "name"),
        ("LeadCreate", "notes"),
        ("LeadUpdate", "source"),
        ("MessageCreate", "body"),
        ("PaymentCreate", "description"),
        # example:lead end
        ("UserRegister", "full_name"),
        ("LoginForm", "username"),
    ]:
        assert pattern_of(schemas[model]["properties"][field]), (model, field)
    # example:lead start
    [q] = [p for p in spec["paths"]["/api/v1/leads"]["get"]["parameters"] if p["name"] == "q"]
    assert pattern_of(q["schema"])
    # example:lead end
