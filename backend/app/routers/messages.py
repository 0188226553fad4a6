"""Message routes: queue, list and cancel SMS follow-ups to a lead.

Queuing only stores the message (an outbox row committed with the request); the worker
sends it after the response. Nothing here talks to the SMS provider.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from backend.app.core.deps import CurrentUser, SessionDep, SettingsDep
from backend.app.core.errors import (
    LeadHasNoPhoneError,
    LeadOptedOutError,
    MessageNotCancelableError,
    NotFoundError,
    RecipientOptedOutError,
    SmsQuotaExceededError,
    error_responses,
)
from backend.app.core.idempotency import IDEMPOTENCY_ERRORS, Idempotency, replayable
from backend.app.crud import lead_actions as crud_lead_actions
from backend.app.crud import messages as crud_messages
from backend.app.routers.leads import VisibleLead
from backend.app.schemas.common import PageDep
from backend.app.schemas.fields import MAX_ID
from backend.app.schemas.message import MessageCreate, MessagePage, MessageRead

router = APIRouter(prefix="/leads/{lead_id}/messages", tags=["messages"])

MessageId = Annotated[int, Path(ge=1, le=MAX_ID, description="The message's id.")]


@router.post(
    "",
    response_model=MessageRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        **error_responses(
            NotFoundError,
            LeadHasNoPhoneError,
            LeadOptedOutError,
            RecipientOptedOutError,
            *IDEMPOTENCY_ERRORS,
            SmsQuotaExceededError,
            413,
            415,
            422,
        ),
        201: replayable("The message, `queued` or `scheduled`."),
    },
)
async def create_message(
    lead: VisibleLead,
    body: MessageCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    idempotency: Idempotency,
) -> MessageRead | Response:
    """Queue a text to the lead: `queued` now, or `scheduled` for `send_at`.

    The worker sends it after this response. Each user may queue SMS_DAILY_LIMIT texts in
    any 24 hours. Send `Idempotency-Key` to retry safely: a repeated request replays the
    first answer instead of queuing a second text.

    Raises:
        NotFoundError: no such lead, or another member's.
        LeadHasNoPhoneError: the lead has no phone number.
        LeadOptedOutError: the lead replied STOP.
        RecipientOptedOutError: the number replied STOP while the text was being queued.
        SmsQuotaExceededError: the daily limit is reached (429, with Retry-After).
        IdempotencyKeyReusedError: the key was used for another request.
        IdempotencyKeyInUseError: the key's first request is still running.
    """

    async def create() -> MessageRead:
        message = await crud_lead_actions.text_lead(
            session, lead=lead, data=body, sender=user, daily_limit=settings.sms_daily_limit
        )
        return MessageRead.model_validate(message)

    return await idempotency.run(body, create)


@router.get("", response_model=MessagePage, responses=error_responses(NotFoundError, 422))
async def list_messages(lead: VisibleLead, session: SessionDep, page: PageDep) -> MessagePage:
    """Return a page of the lead's messages, both directions, newest first.

    Raises:
        NotFoundError: no such lead, or another member's.
    """
    return await crud_messages.list_texts(session, about=lead, page=page, schema=MessagePage)


@router.delete(
    "/{message_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(NotFoundError, MessageNotCancelableError, 422),
)
async def cancel_message(lead: VisibleLead, message_id: MessageId, session: SessionDep) -> None:
    """Cancel a scheduled message; it stays in the list as `canceled`.

    Raises:
        NotFoundError: no such lead or message.
        MessageNotCancelableError: the message is not `scheduled` (already sent, etc.).
    """
    message = await crud_messages.get_text_for_update(session, about=lead, message_id=message_id)
    await crud_messages.cancel_text(session, message=message)
