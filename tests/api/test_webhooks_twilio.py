"""Twilio's webhooks through the API, signed as Twilio signs them, on both backends.

The texts are queued by the generic crud function (`tests.factories.queue_text`), as any
entity's endpoint would; filing an inbound text on the lead with that number is tested in
`test_lead_messages.py`.
"""

import uuid

import pytest
from sqlalchemy import select

from backend.app.core.errors import RecipientOptedOutError
from backend.app.crud import messages as crud_messages
from backend.app.integrations.twilio import ConsoleSmsSender
from backend.app.models import Message
from backend.app.worker import SmsWorker
from tests.factories import make_member, queue_text
from tests.fakes.twilio_fake import FakeTwilio

PUBLIC = "http://127.0.0.1:8000"  # PUBLIC_BASE_URL of the test app (the default)
STATUS_PATH = "/api/v1/webhooks/twilio/status"
INBOUND_PATH = "/api/v1/webhooks/twilio/inbound"
PHONE = "+14155550100"
OUR_NUMBER = "+15005550006"
SIGNER = FakeTwilio()  # same auth token as the test app's TWILIO_AUTH_TOKEN


async def _post(client, path, params, *, query="", signature=None):
    url = f"{PUBLIC}{path}{query}"
    headers = (
        {} if signature == "" else {"X-Twilio-Signature": signature or SIGNER.sign(url, params)}
    )
    return await client.post(f"{path}{query}", data=params, headers=headers)


async def _sent_message(client, app) -> dict:
    """A text to PHONE that the (console) worker has sent."""
    owner = await make_member(client)
    queued = await queue_text(app, owner, PHONE, "Hi")
    worker = SmsWorker(
        settings=app.state.settings,
        session_factory=app.state.session_factory,
        sender=ConsoleSmsSender(),
    )
    assert await worker.run_once() == 1
    message = await _message(app, queued.id)
    assert message["status"] == "sent"
    return message


async def _message(app, message_id: int) -> dict:
    """What the API would show of a text: its id, status, provider id and error."""
    async with app.state.session_factory() as session:
        row = await session.get_one(Message, message_id)
        return {
            "id": row.id,
            "status": str(row.status),
            "provider_message_id": row.provider_message_id,
            "error_code": row.error_code,
            "error_message": row.error_message,
        }


async def _opted_out(app) -> bool:
    async with app.state.session_factory() as session:
        return await crud_messages.is_opted_out(session, phone=PHONE)


def _callback(message, status, **extra):
    sid = message["provider_message_id"]
    return {
        "AccountSid": SIGNER.account_sid,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": OUR_NUMBER,
        "To": PHONE,
        "ApiVersion": "2010-04-01",
        **extra,
    }


@pytest.mark.parametrize(
    "signature", ["", "bm90IGEgc2lnbmF0dXJl", "wrong-token", "wrong-url", "unsigned-extra"]
)
async def test_status_callback_with_a_bad_signature_is_refused(client, app, signature):
    message = await _sent_message(client, app)
    params = _callback(message, "delivered")
    query = f"?message_id={message['id']}"
    if signature == "wrong-token":
        signature = SIGNER.sign(f"{PUBLIC}{STATUS_PATH}{query}", params, wrong=True)
    elif signature == "wrong-url":  # what request.url would give: not the public URL
        signature = SIGNER.sign(f"http://testserver{STATUS_PATH}{query}", params)
    elif signature == "unsigned-extra":
        signature = SIGNER.sign(f"{PUBLIC}{STATUS_PATH}{query}", params)
        params = {**params, "ErrorCode": "30003"}
    response = await _post(client, STATUS_PATH, params, query=query, signature=signature)
    assert response.status_code == 403
    body = response.json()
    assert set(body) == {"code", "message", "details", "request_id"}
    assert body["code"] == "invalid_signature"
    [after] = [await _message(app, message["id"])]
    assert after == message


async def test_status_callbacks_move_forward_only(client, app):
    message = await _sent_message(client, app)
    query = f"?message_id={message['id']}"
    response = await _post(client, STATUS_PATH, _callback(message, "delivered"), query=query)
    assert response.status_code == 204
    [after] = [await _message(app, message["id"])]
    assert after["status"] == "delivered"
    for late in ("sent", "queued", "failed", "undelivered", "delivered"):
        response = await _post(client, STATUS_PATH, _callback(message, late), query=query)
        assert response.status_code == 204
    [final] = [await _message(app, message["id"])]
    assert final["status"] == "delivered"
    assert final["error_code"] is None


async def test_undelivered_callback_records_the_error(client, app):
    message = await _sent_message(client, app)
    params = _callback(message, "undelivered", ErrorCode="30003", RawDlrDoneDate="2601050930")
    assert (await _post(client, STATUS_PATH, params)).status_code == 204
    assert (await _post(client, STATUS_PATH, params)).status_code == 204  # a duplicate
    [after] = [await _message(app, message["id"])]
    assert after["status"] == "undelivered"
    assert after["error_code"] == "30003"
    assert after["error_message"] == "Unreachable destination handset."


async def test_callback_for_an_unknown_message_is_acknowledged(client):
    params = {"MessageSid": f"SM{uuid.uuid4().hex}", "MessageStatus": "delivered"}
    assert (await _post(client, STATUS_PATH, params)).status_code == 204


async def test_callback_adopts_a_send_whose_answer_was_lost(client, app):
    owner = await make_member(client)
    message_id = (await queue_text(app, owner, PHONE, "Hi")).id
    async with app.state.session_factory.begin() as session:  # a try whose answer was lost
        row = await session.get(Message, message_id)
        row.status, row.attempts = "sending", 1
    sid = f"SM{uuid.uuid4().hex}"
    params = {"MessageSid": sid, "MessageStatus": "sent", "AccountSid": SIGNER.account_sid}
    query = f"?message_id={message_id}"
    assert (await _post(client, STATUS_PATH, params, query=query)).status_code == 204
    after = await _message(app, message_id)
    assert (after["status"], after["provider_message_id"]) == ("sent", sid)
    other = {**params, "MessageSid": f"SM{uuid.uuid4().hex}", "MessageStatus": "delivered"}
    assert (await _post(client, STATUS_PATH, other, query=query)).status_code == 204
    assert await _message(app, message_id) == after  # our id adopts only while no provider id


def _inbound(body, *, from_=PHONE, messaging_service_sid=None):
    return SIGNER.inbound_params(
        from_=from_, to=OUR_NUMBER, body=body, messaging_service_sid=messaging_service_sid
    )


async def test_an_inbound_text_is_answered_with_empty_twiml(client):
    params = _inbound("Sounds good, Tuesday works")
    response = await _post(client, INBOUND_PATH, params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Response/>" in response.text
    assert (await _post(client, INBOUND_PATH, params)).status_code == 200  # redelivered


async def test_inbound_from_an_unknown_number_is_acknowledged(client, app):
    response = await _post(client, INBOUND_PATH, _inbound("hello", from_="+14155550123"))
    assert response.status_code == 200
    async with app.state.session_factory() as session:
        assert (await session.scalars(select(Message))).all() == []


async def test_inbound_with_a_bad_signature_changes_nothing(client, app):
    params = _inbound("STOP")
    url = f"{PUBLIC}{INBOUND_PATH}"
    for signature in ("", SIGNER.sign(url, params, wrong=True)):
        response = await _post(client, INBOUND_PATH, params, signature=signature)
        assert response.status_code == 403
        assert response.json()["code"] == "invalid_signature"
    assert await _opted_out(app) is False


@pytest.mark.parametrize(
    "keyword",
    [
        "STOP",
        "stop",
        " Stop ",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
    ],
)
async def test_stop_opts_the_number_out_of_every_text_and_start_opts_it_back_in(
    client, app, keyword
):
    owner = await make_member(client)
    assert (await _post(client, INBOUND_PATH, _inbound(keyword))).status_code == 200
    assert await _opted_out(app) is True
    for about_user in (None, owner.id):
        with pytest.raises(RecipientOptedOutError):
            await queue_text(app, owner, PHONE, about_user=about_user)
    assert (await _post(client, INBOUND_PATH, _inbound("start"))).status_code == 200
    assert await _opted_out(app) is False
    assert (await queue_text(app, owner, PHONE)).status == "queued"


@pytest.mark.parametrize("body", ["Stop please", "OPT OUT", "stopp", "Don't stop"])
async def test_only_a_whole_message_keyword_opts_out(client, app, body):
    assert (await _post(client, INBOUND_PATH, _inbound(body))).status_code == 200
    assert await _opted_out(app) is False


async def test_advanced_opt_out_type_is_honoured(client, app):
    params = {**_inbound("arret"), "OptOutType": "STOP"}
    assert (await _post(client, INBOUND_PATH, params)).status_code == 200
    assert await _opted_out(app) is True
