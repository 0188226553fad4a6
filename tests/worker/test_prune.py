"""The worker's periodic clean-up deletes only rows nothing needs any more."""

from datetime import timedelta

from sqlalchemy import select

from backend.app.models.base import utcnow
from backend.app.models.idempotency_key import IdempotencyKey
from backend.app.models.sms_usage import SmsUsage
from backend.app.models.stripe_event import StripeEvent
from backend.app.worker import Worker
from tests.factories import make_member


def _key(user_id: int, key: str, created_at) -> IdempotencyKey:
    return IdempotencyKey(user_id=user_id, key=key, request_hash="h", created_at=created_at)


async def test_prune_removes_expired_keys_events_and_quota_entries_only(client, app):
    owner = await make_member(client)
    now = utcnow()
    async with app.state.session_factory.begin() as session:
        session.add_all(
            [
                IdempotencyKey(
                    user_id=owner.id,
                    key="old",
                    request_hash="h",
                    created_at=now - timedelta(hours=25),
                ),
                IdempotencyKey(
                    user_id=owner.id,
                    key="new",
                    request_hash="h",
                    created_at=now - timedelta(hours=23),
                ),
                StripeEvent(id="evt_old", type="x", received_at=now - timedelta(days=31)),
                StripeEvent(id="evt_new", type="x", received_at=now - timedelta(days=4)),
                SmsUsage(user_id=owner.id, created_at=now - timedelta(hours=25)),
                SmsUsage(user_id=owner.id, created_at=now - timedelta(hours=1)),
            ]
        )
    settings = app.state.settings
    worker = Worker(settings=settings, session_factory=app.state.session_factory, deliveries=[])

    await worker.prune_if_due()

    async with app.state.session_factory() as session:
        keys = (await session.scalars(select(IdempotencyKey.key))).all()
        events = (await session.scalars(select(StripeEvent.id))).all()
        usage = (await session.scalars(select(SmsUsage.created_at))).all()
    assert keys == ["new"]
    assert events == ["evt_new"]
    assert len(usage) == 1
    assert usage[0] > now - timedelta(hours=2)
