"""Texting any number, with no entity of the example: a text about no record or about any
record, opt-outs kept per number, the daily quota, cancelling, and STOP/START from the
inbound webhook. On both backends."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from backend.app.core.errors import (
    MessageNotCancelableError,
    RecipientOptedOutError,
    SmsQuotaExceededError,
)
from backend.app.crud import messages as crud_messages
from backend.app.models import Message, User
from backend.app.models.message import MessageStatus
from backend.app.schemas.common import OutputModel, Page, PageParams
from tests.factories import make_member, queue_text

PHONE = "+14155550100"
OTHER_PHONE = "+14155550199"


class TextRead(OutputModel):
    """What a page of texts needs to show here."""

    id: int
    body: str


class TextPage(Page[TextRead]):
    """A page of texts about one record."""


async def _texts_about(app, user_id: int) -> list[tuple[int, str]]:
    async with app.state.session_factory() as session:
        user = await session.get_one(User, user_id)
        page = await crud_messages.list_texts(
            session, about=user, page=PageParams(limit=50, offset=0), schema=TextPage
        )
        return [(message.id, message.body) for message in page.items]


async def _inbound(app, body: str, *, sid: str) -> None:
    async with app.state.session_factory.begin() as session:
        await crud_messages.record_inbound(
            session,
            provider_message_id=sid,
            from_phone=PHONE,
            body=body,
            opt_keyword=body.upper() if body.upper() in {"STOP", "START"} else None,
            subject_types=[],
        )


async def test_a_text_to_a_number_about_no_record_is_queued_now(client, app):
    sender = await make_member(client)
    message = await queue_text(app, sender, PHONE, "Hello")
    assert (message.phone, message.body, message.status) == (PHONE, "Hello", "queued")
    assert (message.subject_type, message.subject_id) == (None, None)
    assert message.due_at is not None
    assert message.created_by_id == sender.id


async def test_a_text_about_a_record_is_listed_with_that_record_only(client, app):
    sender = await make_member(client)
    other = await make_member(client)
    later = datetime.now(UTC) + timedelta(hours=1)
    about = await queue_text(app, sender, PHONE, "About you", send_at=later, about_user=other.id)
    await queue_text(app, sender, PHONE, "About nothing")
    assert (about.subject_type, about.subject_id, about.status) == ("users", other.id, "scheduled")
    assert await _texts_about(app, other.id) == [(about.id, "About you")]
    assert await _texts_about(app, sender.id) == []


async def test_a_stop_from_a_number_stops_every_text_to_it_until_start(client, app):
    sender = await make_member(client)
    other = await make_member(client)
    await _inbound(app, "STOP", sid="SM" + "1" * 32)
    for about_user in (None, other.id):
        with pytest.raises(RecipientOptedOutError):
            await queue_text(app, sender, PHONE, "Hi", about_user=about_user)
    assert (await queue_text(app, sender, OTHER_PHONE, "Hi")).status == "queued"
    await _inbound(app, "START", sid="SM" + "2" * 32)
    assert (await queue_text(app, sender, PHONE, "Hi again")).status == "queued"


async def test_an_inbound_text_from_a_number_no_record_has_is_not_stored(client, app):
    await _inbound(app, "Who is this?", sid="SM" + "3" * 32)
    async with app.state.session_factory() as session:
        assert (await session.scalars(select(Message))).all() == []


async def test_the_daily_limit_counts_texts_per_sender(client, app):
    sender = await make_member(client)
    await queue_text(app, sender, PHONE, daily_limit=2)
    await queue_text(app, sender, OTHER_PHONE, daily_limit=2)
    with pytest.raises(SmsQuotaExceededError) as refused:
        await queue_text(app, sender, PHONE, daily_limit=2)
    assert 86_000 < refused.value.retry_after <= 86_401
    assert (await queue_text(app, await make_member(client), PHONE, daily_limit=2)).id


async def test_only_a_scheduled_text_can_be_canceled(client, app):
    sender = await make_member(client)
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled = await queue_text(app, sender, PHONE, send_at=later, about_user=sender.id)
    now = await queue_text(app, sender, PHONE, about_user=sender.id)
    async with app.state.session_factory.begin() as session:
        user = await session.get_one(User, sender.id)
        row = await crud_messages.get_text_for_update(session, about=user, message_id=scheduled.id)
        canceled = await crud_messages.cancel_text(session, message=row)
        assert (canceled.status, canceled.due_at) == (MessageStatus.CANCELED, None)
        row = await crud_messages.get_text_for_update(session, about=user, message_id=now.id)
        with pytest.raises(MessageNotCancelableError):
            await crud_messages.cancel_text(session, message=row)
