"""Billing any record, with no entity of the example: payments about a user, and the hook an
entity registers to hear when one of its payments is settled. On both backends."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app.core.subjects import SubjectType
from backend.app.crud import payments as crud_payments
from backend.app.integrations.stripe import CheckoutOutcome, WebhookEvent
from backend.app.models import Payment, User
from backend.app.models.payment import PaymentStatus
from tests.factories import bill_user, make_member


class Recorder:
    """An entity's `on_payment_settled` hook that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, PaymentStatus]] = []

    async def __call__(self, session: AsyncSession, payment: Payment) -> None:
        self.calls.append((payment.id, payment.status))


def _event(payment: Payment, outcome: CheckoutOutcome | None, event_id: str) -> WebhookEvent:
    return WebhookEvent(
        id=event_id,
        type="checkout.session.completed",
        session_id=payment.provider_payment_id,
        payment_id=payment.id,
        outcome=outcome,
    )


async def _apply(app, event: WebhookEvent, subject_types) -> Payment | None:
    async with app.state.session_factory.begin() as session:
        return await crud_payments.apply_checkout_event(
            session, event=event, subject_types=subject_types
        )


async def test_a_payment_about_any_record_is_pending_with_its_checkout_page(client, app):
    owner = await make_member(client)
    payment = await bill_user(app, owner, amount=1250)
    assert (payment.subject_type, payment.subject_id) == ("users", owner.id)
    assert (payment.amount, payment.currency, payment.status) == (1250, "usd", "pending")
    assert payment.provider_payment_id
    assert payment.checkout_url


@pytest.mark.parametrize(
    ("outcome", "final"),
    [
        (CheckoutOutcome.PAID, PaymentStatus.PAID),
        (CheckoutOutcome.FAILED, PaymentStatus.FAILED),
        (CheckoutOutcome.EXPIRED, PaymentStatus.EXPIRED),
    ],
)
async def test_the_owning_entitys_hook_hears_of_each_settled_payment_once(
    client, app, outcome, final
):
    owner = await make_member(client)
    payment = await bill_user(app, owner)
    hook = Recorder()
    subject_types = {"users": SubjectType(model=User, on_payment_settled=hook)}
    settled = await _apply(app, _event(payment, outcome, "evt_1"), subject_types)
    assert settled is not None
    assert settled.status is final
    assert hook.calls == [(payment.id, final)]
    # A redelivery, and a later outcome of a settled payment, change nothing and call no hook.
    assert await _apply(app, _event(payment, outcome, "evt_1"), subject_types) is None
    assert await _apply(app, _event(payment, CheckoutOutcome.PAID, "evt_2"), subject_types) is None
    assert hook.calls == [(payment.id, final)]


async def test_an_event_that_settles_nothing_calls_no_hook(client, app):
    owner = await make_member(client)
    payment = await bill_user(app, owner)
    hook = Recorder()
    subject_types = {"users": SubjectType(model=User, on_payment_settled=hook)}
    assert await _apply(app, _event(payment, None, "evt_unpaid"), subject_types) is None
    assert hook.calls == []


async def test_a_payment_of_an_entity_with_no_hook_still_settles(client, app):
    owner = await make_member(client)
    payment = await bill_user(app, owner)
    settled = await _apply(app, _event(payment, CheckoutOutcome.PAID, "evt_3"), {})
    assert settled is not None
    assert settled.status is PaymentStatus.PAID
