"""The worker's hourly clean-up also deletes audit events past AUDIT_RETENTION_DAYS."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from backend.app.models import AuditEvent
from backend.app.models.base import utcnow
from backend.app.worker import Worker
from tests.conftest import make_settings


@pytest.mark.parametrize(("retention_days", "left"), [(30, 1), (0, 2)])
async def test_prune_deletes_audit_events_past_the_retention(
    client, app, database_url, retention_days, left
):
    now = utcnow()
    async with app.state.session_factory.begin() as session:
        session.add_all(
            AuditEvent(actor="system", action="update", entity_type="lead", occurred_at=at)
            for at in (now - timedelta(days=31), now - timedelta(days=29))
        )
    settings = make_settings(database_url, audit_retention_days=retention_days)
    worker = Worker(settings=settings, session_factory=app.state.session_factory, deliveries=[])

    await worker.prune_if_due()

    async with app.state.session_factory() as session:  # only this test's rows are that old
        query = select(AuditEvent.occurred_at).where(
            AuditEvent.occurred_at < now - timedelta(days=20)
        )
        kept = (await session.scalars(query)).all()
    assert len(kept) == left
    assert min(kept) > now - timedelta(days=30 if left == 1 else 32)
