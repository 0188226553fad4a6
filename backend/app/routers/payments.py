"""Payment routes: bill a lead through a hosted checkout page, and list its payments.

Creates accept an `Idempotency-Key` header (see `core/idempotency.py`).
"""

from fastapi import APIRouter, Response, status

from backend.app.core.deps import CheckoutProviderDep, CurrentUser, SessionDep
from backend.app.core.errors import (
    CircuitOpenError,
    NotFoundError,
    PaymentProviderError,
    PaymentRejectedError,
    error_responses,
)
from backend.app.core.idempotency import IDEMPOTENCY_ERRORS, Idempotency, replayable
from backend.app.crud import lead_actions as crud_lead_actions
from backend.app.crud import payments as crud_payments
from backend.app.routers.leads import VisibleLead
from backend.app.schemas.common import PageDep
from backend.app.schemas.payment import PaymentCreate, PaymentPage, PaymentRead

router = APIRouter(prefix="/leads/{lead_id}/payments", tags=["payments"])


@router.post(
    "",
    response_model=PaymentRead,
    status_code=status.HTTP_201_CREATED,
    responses={
        **error_responses(
            NotFoundError,
            *IDEMPOTENCY_ERRORS,
            PaymentRejectedError,
            PaymentProviderError,
            CircuitOpenError,
            413,
            415,
            422,
        ),
        201: replayable("The payment, `pending`, with the `checkout_url` the lead pays at."),
    },
)
async def create_payment(
    lead: VisibleLead,
    body: PaymentCreate,
    user: CurrentUser,
    session: SessionDep,
    checkout: CheckoutProviderDep,
    idempotency: Idempotency,
) -> PaymentRead | Response:
    """Bill a lead: create a pending payment and its checkout session.

    The checkout session is opened before the answer; if the payment provider is down or
    times out the answer is 502 and nothing is stored. Send `Idempotency-Key` to retry
    safely: a repeated request replays the first answer instead of billing twice.

    Raises:
        NotFoundError: no such lead, or another member's.
        PaymentProviderError: the payment provider failed (502).
        PaymentRejectedError: the payment provider refused the amount or currency (422).
        CircuitOpenError: the provider failed too often in a row; paused for a while (503).
        IdempotencyKeyReusedError: the key was used for another request.
        IdempotencyKeyInUseError: the key's first request is still running.
    """

    async def create() -> PaymentRead:
        payment = await crud_lead_actions.bill_lead(
            session, lead=lead, data=body, creator=user, checkout=checkout
        )
        return PaymentRead.model_validate(payment)

    return await idempotency.run(body, create)


@router.get("", response_model=PaymentPage, responses=error_responses(NotFoundError, 422))
async def list_payments(lead: VisibleLead, session: SessionDep, page: PageDep) -> PaymentPage:
    """Return a page of a lead's payments, newest first.

    Raises:
        NotFoundError: no such lead, or another member's.
    """
    return await crud_payments.list_payments(session, about=lead, page=page, schema=PaymentPage)
