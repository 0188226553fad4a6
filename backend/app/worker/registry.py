"""Every delivery the worker runs, by name: SMS, then one per integration with an outbox.

`make integration NAME=...` adds its line to `DELIVERIES`; a hand-written integration adds
one the same way (see `worker/deliveries.py`).
"""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app.core.config import Settings
from backend.app.worker.deliveries import Delivery, DeliveryFactory
from backend.app.worker.sms_worker import sms_delivery

DELIVERIES: dict[str, DeliveryFactory] = {
    "sms": sms_delivery,
}


def create_deliveries(
    settings: Settings, session_factory: async_sessionmaker[AsyncSession]
) -> list[Delivery]:
    """Build every registered delivery for one worker, in the order listed."""
    return [factory(settings, session_factory) for factory in DELIVERIES.values()]
