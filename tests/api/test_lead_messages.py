"""The Messages section of the contract, through the API, on both backends."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from backend.app.integrations.twilio import ConsoleSmsSender
from backend.app.models import Message, SmsOptOut, SmsUsage
from backend.app.worker import SmsWorker
from tests.conftest import client_for, make_settings, running_app
from tests.factories import make_admin, make_lead, make_member
from tests.fakes.twilio_fake import FakeTwilio

PHONE = "+14155550100"
MESSAGE_FIELDS = {
    "id",
    "lead_id",
    "direction",
    "body",
    "status",
    "send_at",
    "sent_at",
    "provider_message_id",
    "error_code",
    "error_message",
    "created_at",
    "updated_at",
}


def _url(lead: dict, suffix: str = "") -> str:
    return f"/api/v1/leads/{lead['id']}/messages{suffix}"


def _future(seconds: int = 3600) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_create_queues_a_message_without_sending_it(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    response = await client.post(_url(lead), json={"body": "Hi there"}, headers=owner.headers)
    assert response.status_code == 201, response.text
    message = response.json()
    assert set(message) == MESSAGE_FIELDS
    assert message["lead_id"] == lead["id"]
    assert message["direction"] == "outbound"
    assert message["status"] == "queued"
    assert message["body"] == "Hi there"
    assert message["send_at"] is message["sent_at"] is message["provider_message_id"] is None
    assert message["created_at"].endswith(("Z", "+00:00"))


async def test_create_with_future_send_at_is_scheduled(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    send_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    response = await client.post(
        _url(lead),
        json={"body": "Tomorrow", "send_at": send_at.isoformat()},
        headers=owner.headers,
    )
    assert response.status_code == 201
    assert response.json()["status"] == "scheduled"
    assert datetime.fromisoformat(response.json()["send_at"]) == send_at


@pytest.mark.parametrize(
    "body",
    [
        {"body": ""},
        {"body": "   "},
        {"body": "x" * 1601},
        {"body": 5},
        {},
        {"body": "Hi", "send_at": "2099-01-01T10:00:00"},  # no offset
        {"body": "Hi", "send_at": "2000-01-01T10:00:00Z"},  # past
        {"body": "Hi", "send_at": 4102444800},
        {"body": "Hi", "status": "sent"},
        {"body": "Hi", "lead_id": 1},
    ],
)
async def test_create_rejects_invalid_bodies(client, body):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    response = await client.post(_url(lead), json=body, headers=owner.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_body_of_1600_characters_is_accepted(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    response = await client.post(_url(lead), json={"body": "x" * 1600}, headers=owner.headers)
    assert response.status_code == 201


async def test_lead_without_phone_is_a_conflict(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner)
    response = await client.post(_url(lead), json={"body": "Hi"}, headers=owner.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "lead_has_no_phone"


async def test_opted_out_lead_is_a_conflict(client, app):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    async with app.state.session_factory.begin() as session:  # its number replied STOP
        session.add(SmsOptOut(phone=PHONE))
    response = await client.post(_url(lead), json={"body": "Hi"}, headers=owner.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "lead_opted_out"


async def test_someone_elses_lead_is_not_found(client):
    owner, other = await make_member(client), await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    for method, path in [("POST", _url(lead)), ("GET", _url(lead)), ("DELETE", _url(lead, "/1"))]:
        response = await client.request(method, path, json={"body": "Hi"}, headers=other.headers)
        assert response.status_code == 404, (method, response.text)


async def test_admin_may_text_any_lead(client, app):
    owner = await make_member(client)
    admin = await make_admin(app, client)
    lead = await make_lead(client, owner, phone=PHONE)
    response = await client.post(_url(lead), json={"body": "Hi"}, headers=admin.headers)
    assert response.status_code == 201


async def test_without_token_is_401(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    assert (await client.post(_url(lead), json={"body": "Hi"})).status_code == 401
    assert (await client.get(_url(lead))).status_code == 401


async def test_list_is_newest_first_and_paged(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    other_lead = await make_lead(client, owner, phone=PHONE)
    for n in range(3):
        await client.post(_url(lead), json={"body": f"m{n}"}, headers=owner.headers)
    await client.post(_url(other_lead), json={"body": "elsewhere"}, headers=owner.headers)
    page = (await client.get(_url(lead), headers=owner.headers)).json()
    assert [m["body"] for m in page["items"]] == ["m2", "m1", "m0"]
    assert (page["total"], page["limit"], page["offset"]) == (3, 50, 0)
    second = await client.get(_url(lead), params={"limit": 2, "offset": 2}, headers=owner.headers)
    assert [m["body"] for m in second.json()["items"]] == ["m0"]
    bad = await client.get(_url(lead), params={"limit": 101}, headers=owner.headers)
    assert bad.status_code == 422


async def test_cancel_scheduled_message(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    created = await client.post(
        _url(lead), json={"body": "Later", "send_at": _future()}, headers=owner.headers
    )
    path = _url(lead, f"/{created.json()['id']}")
    response = await client.delete(path, headers=owner.headers)
    assert response.status_code == 204
    assert response.content == b""
    [message] = (await client.get(_url(lead), headers=owner.headers)).json()["items"]
    assert message["status"] == "canceled"
    again = await client.delete(path, headers=owner.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "message_not_cancelable"


async def test_cancel_queued_or_sent_message_is_a_conflict(client, app):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    created = await client.post(_url(lead), json={"body": "Now"}, headers=owner.headers)
    path = _url(lead, f"/{created.json()['id']}")
    assert (await client.delete(path, headers=owner.headers)).status_code == 409
    worker = SmsWorker(
        settings=app.state.settings,
        session_factory=app.state.session_factory,
        sender=ConsoleSmsSender(),
    )
    assert await worker.run_once() == 1
    response = await client.delete(path, headers=owner.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "message_not_cancelable"


async def test_cancel_unknown_message_or_on_another_lead_is_404(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    other_lead = await make_lead(client, owner, phone=PHONE)
    created = await client.post(
        _url(lead), json={"body": "Later", "send_at": _future()}, headers=owner.headers
    )
    wrong_lead = _url(other_lead, f"/{created.json()['id']}")
    assert (await client.delete(wrong_lead, headers=owner.headers)).status_code == 404
    assert (await client.delete(_url(lead, "/999999"), headers=owner.headers)).status_code == 404
    assert (await client.delete(_url(lead, "/abc"), headers=owner.headers)).status_code == 422


async def test_deleting_a_lead_deletes_its_messages(client, app):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    await client.post(_url(lead), json={"body": "Now"}, headers=owner.headers)
    await client.post(
        _url(lead), json={"body": "Later", "send_at": _future()}, headers=owner.headers
    )
    response = await client.delete(f"/api/v1/leads/{lead['id']}", headers=owner.headers)
    assert response.status_code == 204
    async with app.state.session_factory() as session:
        left = await session.scalar(select(func.count(Message.id)))
    assert left == 0


async def test_daily_quota_is_per_user_and_survives_lead_deletion(database_url):
    settings = make_settings(database_url, sms_daily_limit=2)
    async with running_app(settings) as app, client_for(app) as client:
        owner, other = await make_member(client), await make_member(client)
        lead = await make_lead(client, owner, phone=PHONE)
        for n in range(2):
            response = await client.post(_url(lead), json={"body": f"{n}"}, headers=owner.headers)
            assert response.status_code == 201
        await client.delete(f"/api/v1/leads/{lead['id']}", headers=owner.headers)
        lead = await make_lead(client, owner, phone=PHONE)
        response = await client.post(_url(lead), json={"body": "3"}, headers=owner.headers)
        assert response.status_code == 429
        assert response.json()["code"] == "sms_quota_exceeded"
        assert 86000 < int(response.headers["Retry-After"]) <= 86401
        other_lead = await make_lead(client, other, phone=PHONE)
        ok = await client.post(_url(other_lead), json={"body": "x"}, headers=other.headers)
        assert ok.status_code == 201
        async with app.state.session_factory() as session:
            assert await session.scalar(select(func.count(SmsUsage.id))) == 3
        from tests.conftest import clean_database

        await clean_database(app)


async def test_openapi_documents_the_specific_codes(client):
    spec = (await client.get("/openapi.json")).json()
    post = spec["paths"]["/api/v1/leads/{lead_id}/messages"]["post"]["responses"]
    assert re.search("lead_has_no_phone", post["409"]["description"])
    assert re.search("lead_opted_out", post["409"]["description"])
    assert re.search("sms_quota_exceeded", post["429"]["description"])
    delete = spec["paths"]["/api/v1/leads/{lead_id}/messages/{message_id}"]["delete"]
    assert "message_not_cancelable" in delete["responses"]["409"]["description"]
    webhooks = spec["paths"]["/api/v1/webhooks/twilio/status"]["post"]
    assert "invalid_signature" in webhooks["responses"]["403"]["description"]


# Twilio's inbound webhook: a text is filed on each lead with the sender's number, and a
# STOP shows on each of them as `sms_opted_out`.

INBOUND_PATH = "/api/v1/webhooks/twilio/inbound"
SIGNER = FakeTwilio()  # same auth token as the test app's TWILIO_AUTH_TOKEN


def _inbound(body: str) -> dict[str, str]:
    return SIGNER.inbound_params(from_=PHONE, to="+15005550006", body=body)


async def _post(client, path, params):
    signature = SIGNER.sign(f"http://127.0.0.1:8000{path}", params)
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


async def _messages(client, lead, owner):
    response = await client.get(f"/api/v1/leads/{lead['id']}/messages", headers=owner.headers)
    return response.json()["items"]


async def test_inbound_text_is_stored_on_the_lead_and_answered_with_twiml(client):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    stranger_lead = await make_lead(client, owner, phone="+14155550199")
    params = _inbound("Sounds good, Tuesday works")
    response = await _post(client, INBOUND_PATH, params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Response/>" in response.text
    assert (await _post(client, INBOUND_PATH, params)).status_code == 200  # redelivered
    [message] = await _messages(client, lead, owner)
    assert message["direction"] == "inbound"
    assert message["status"] == "received"
    assert message["body"] == "Sounds good, Tuesday works"
    assert message["provider_message_id"] == params["MessageSid"]
    assert await _messages(client, stranger_lead, owner) == []


@pytest.mark.parametrize("keyword", ["STOP", " Stop "])
async def test_stop_opts_out_every_lead_with_the_number_and_start_opts_back_in(client, keyword):
    owner = await make_member(client)
    lead = await make_lead(client, owner, phone=PHONE)
    same_phone_lead = await make_lead(client, owner, phone=PHONE)
    url = f"/api/v1/leads/{lead['id']}"
    assert (await _post(client, INBOUND_PATH, _inbound(keyword))).status_code == 200
    assert (await client.get(url, headers=owner.headers)).json()["sms_opted_out"] is True
    other = await client.get(f"/api/v1/leads/{same_phone_lead['id']}", headers=owner.headers)
    assert other.json()["sms_opted_out"] is True
    refused = await client.post(f"{url}/messages", json={"body": "Hi"}, headers=owner.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "lead_opted_out"
    assert (await _post(client, INBOUND_PATH, _inbound("start"))).status_code == 200
    assert (await client.get(url, headers=owner.headers)).json()["sms_opted_out"] is False
    allowed = await client.post(f"{url}/messages", json={"body": "Hi"}, headers=owner.headers)
    assert allowed.status_code == 201
