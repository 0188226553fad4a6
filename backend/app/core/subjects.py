"""Records that texts and payments are about, whatever their entity.

A text (`models/message.py`) or a payment (`models/payment.py`) names the record it is about
by table and id (`subject_type`, `subject_id`) instead of a foreign key of its own, so SMS and
billing serve every entity without a column or a migration per entity. In return the entity
keeps the integrity a foreign key would have kept, in two calls its crud module makes:

- `lock_subject` after inserting a text or payment about a record: the record must still
  exist, and on PostgreSQL it stays locked (FOR KEY SHARE) until the request commits, so a
  concurrent delete waits for it;
- the entity's delete removes the record first (which waits for such a lock), then deletes
  its texts (`crud.messages.delete_texts_about`) and refuses if it has payments
  (`crud.payments.has_payments_about`).

`SubjectType` describes what SMS and billing need of an entity: the column holding its phone
number (inbound texts from that number are filed on each of its records) and a hook called
when one of its payments is settled. The entities that take part are listed once, in
`crud/subject_types.py`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from backend.app.core.db_errors import entity_label
from backend.app.core.errors import NotFoundError
from backend.app.models.base import Base

if TYPE_CHECKING:
    from backend.app.models.payment import Payment

PaymentHook = Callable[[AsyncSession, "Payment"], Awaitable[None]]


@dataclass(frozen=True)
class Subject:
    """A record named by its table (`leads`) and primary key."""

    type: str
    id: int


@dataclass(frozen=True)
class SubjectType:
    """What texts and payments need to know of one entity.

    Attributes:
        model: the entity's model.
        phone: its column of E.164 numbers, if it has one: an inbound text from a number is
            stored once for each of its records with that number.
        on_payment_settled: called in the webhook's unit of work when a payment about one of
            its records becomes `paid`, `failed` or `expired`.
    """

    model: type[Base]
    phone: InstrumentedAttribute[Any] | None = None
    on_payment_settled: PaymentHook | None = None

    @property
    def name(self) -> str:
        """The `subject_type` stored with its texts and payments: its table name."""
        return str(self.model.__tablename__)


def subject_of(record: Base) -> Subject:
    """Return the subject reference of a loaded record.

    Raises:
        ValueError: the record has no primary key yet (flush it first).
    """
    identity = inspect(record).identity
    if identity is None:
        raise ValueError("the record has no primary key yet: flush it first")
    return Subject(type(record).__tablename__, int(identity[0]))


async def lock_subject(session: AsyncSession, subject: Subject) -> None:
    """Check that `subject` still exists, and keep it from being deleted until commit.

    Raises:
        NotFoundError: the record was deleted meanwhile (a concurrent request won).
    """
    table = Base.metadata.tables[subject.type]
    assert isinstance(table, Table)
    key: Any = next(iter(table.primary_key.columns))
    found = await session.scalar(
        select(key).where(key == subject.id).with_for_update(key_share=True)
    )
    if found is None:
        raise NotFoundError(
            f"{entity_label(subject.type).capitalize()} {subject.id} was not found."
        )
