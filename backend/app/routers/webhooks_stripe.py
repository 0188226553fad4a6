"""The Stripe webhook: checkout outcomes, authenticated by Stripe-Signature (no bearer token).

Stripe and the fake checkout page (BILLING_PROVIDER=fake) both call it, signed with
STRIPE_WEBHOOK_SECRET. Events are verified on the raw body, recorded by id (a redelivery
changes nothing) and applied in the same transaction.
"""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from backend.app.core.audit_context import WEBHOOK_STRIPE
from backend.app.core.deps import SessionDep, SettingsDep, audit_actor
from backend.app.core.errors import (
    InvalidStripeSignatureError,
    InvalidWebhookPayloadError,
    error_responses,
)
from backend.app.crud import payments as crud_payments
from backend.app.crud.subject_types import SUBJECT_TYPES
from backend.app.integrations.stripe import verify_webhook
from backend.app.schemas.webhooks_stripe import WebhookAck

logger = logging.getLogger("app.webhooks.stripe")

router = APIRouter(
    prefix="/webhooks", tags=["webhooks"], dependencies=[Depends(audit_actor(WEBHOOK_STRIPE))]
)


@router.post(
    "/stripe",
    response_model=WebhookAck,
    responses=error_responses(InvalidStripeSignatureError, InvalidWebhookPayloadError, 413, 422),
)
async def stripe_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    stripe_signature: Annotated[
        str | None,
        Header(alias="Stripe-Signature", description="`t=<unix>,v1=<hex HMAC-SHA256>`."),
    ] = None,
) -> WebhookAck:
    """Apply a Stripe Checkout event to its payment.

    `checkout.session.completed` (paid) and `checkout.session.async_payment_succeeded` ->
    `paid`; `checkout.session.async_payment_failed` -> `failed`; `checkout.session.expired`
    -> `expired`. Final statuses never change; unknown events are acknowledged and ignored.

    Raises:
        InvalidStripeSignatureError: a missing, wrong or stale (> 300 s) signature (400).
        InvalidWebhookPayloadError: a signed body that is not an event we can store (400).
    """
    payload = await request.body()
    event = verify_webhook(
        payload, stripe_signature, settings.stripe_webhook_secret.get_secret_value()
    )
    payment = await crud_payments.apply_checkout_event(
        session, event=event, subject_types=SUBJECT_TYPES
    )
    logger.info(
        "stripe event",
        extra={
            "event_id": event.id,
            "event_type": event.type,
            "payment_id": payment.id if payment else None,
            "payment_status": payment.status.value if payment else None,
        },
    )
    return WebhookAck()
