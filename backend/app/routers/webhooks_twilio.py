"""Twilio webhooks: message status callbacks and inbound texts.

Public routes, authenticated by `X-Twilio-Signature` instead of a bearer token. The signed
URL is rebuilt from PUBLIC_BASE_URL (a proxy sits in front in production, so `request.url`
is not what Twilio called) and every posted parameter is signed, including ones Twilio adds
later. A request without a valid signature gets 403 and changes nothing.
"""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response, status

from backend.app.core.audit_context import WEBHOOK_TWILIO
from backend.app.core.deps import SessionDep, SettingsDep, audit_actor
from backend.app.core.errors import InvalidWebhookSignatureError, error_responses
from backend.app.crud import messages as crud_messages
from backend.app.crud.subject_types import SUBJECT_TYPES
from backend.app.integrations.twilio import is_valid_signature, opt_keyword
from backend.app.schemas.fields import MAX_ID
from backend.app.schemas.webhooks_twilio import TwilioInboundMessage, TwilioStatusCallback

logger = logging.getLogger("app.webhooks.twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def verify_twilio_signature(request: Request, settings: SettingsDep) -> None:
    """Check `X-Twilio-Signature` over the public URL and all posted parameters.

    Raises:
        InvalidWebhookSignatureError: the signature is missing or wrong.
    """
    form = await request.form()
    params: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):  # Twilio never uploads files
            raise InvalidWebhookSignatureError
        params.setdefault(name, []).append(value)
    url = settings.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += f"?{request.url.query}"
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    signature = request.headers.get("X-Twilio-Signature")
    if not is_valid_signature(auth_token=token, url=url, params=params, signature=signature):
        logger.warning("twilio webhook refused: bad signature", extra={"path": request.url.path})
        raise InvalidWebhookSignatureError


router = APIRouter(
    prefix="/webhooks/twilio",
    tags=["webhooks"],
    dependencies=[Depends(verify_twilio_signature), Depends(audit_actor(WEBHOOK_TWILIO))],
    responses=error_responses(InvalidWebhookSignatureError, 422),
)


@router.post("/status", status_code=status.HTTP_204_NO_CONTENT)
async def twilio_status_callback(
    form: Annotated[TwilioStatusCallback, Form()],
    session: SessionDep,
    message_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Our message id (the worker sets it).")
    ] = None,
) -> None:
    """Receive a status callback (Twilio's `StatusCallback`) for a text we sent.

    Moves the message `sent` -> `delivered` | `undelivered` | `failed`, never backwards;
    duplicates and late callbacks change nothing. `message_id` is our id, which the worker
    puts in the callback URL.
    """
    await crud_messages.apply_status_callback(
        session,
        provider_message_id=form.MessageSid,
        provider_status=form.MessageStatus,
        error_code=form.ErrorCode,
        message_id=message_id,
    )


@router.post(
    "/inbound",
    response_class=Response,
    responses={200: {"content": {"application/xml": {"example": EMPTY_TWIML}}}},
)
async def twilio_inbound_message(
    form: Annotated[TwilioInboundMessage, Form()], session: SessionDep
) -> Response:
    """Receive a text from a lead; answer empty TwiML (no automatic reply).

    The text is stored as an `inbound` message on each record with that phone (each lead).
    STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE or OPTOUT (the whole text, any case)
    opts the number out of every text; START, YES or UNSTOP lifts it.
    """
    await crud_messages.record_inbound(
        session,
        provider_message_id=form.MessageSid,
        from_phone=form.From,
        body=form.Body,
        opt_keyword=opt_keyword(form.Body, form.OptOutType),
        subject_types=SUBJECT_TYPES.values(),
    )
    return Response(content=EMPTY_TWIML, media_type="application/xml")
