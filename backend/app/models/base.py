"""Declarative base, naming convention and the column building blocks of every model.

- `Base`: the declarative base; its metadata names every constraint and index the same way.
- `BigIntId`: the primary key type (BIGINT identity on PostgreSQL).
- `TimestampMixin`: `created_at` and `updated_at`, both UTC; `updated_at` is kept current
  by SQLAlchemy on every UPDATE (ORM or Core), so no crud function ever sets it by hand.
- `enum_column(SomeStrEnum)`: a StrEnum stored as its values in a VARCHAR with a CHECK
  constraint (portable to SQLite; a new value is a migration of the constraint only).
"""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import BigInteger, DateTime, Enum, Integer, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT identity on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    PostgreSQL keeps `timestamptz`; SQLite keeps no offset, so it is restored on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and store aware ones in UTC.

        Raises:
            ValueError: when `value` has no timezone.
        """
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored value as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base class of every model; its metadata carries the naming convention.

    Every create, update and delete of a model's rows is recorded in the audit trail
    (`core/audit.py`) unless the model sets `__audited__ = False` (bookkeeping tables).
    A column with `info={"audit": False}` is left out of the recorded changes.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime}
    __audited__: ClassVar[bool] = True


def _created_at(context: DefaultExecutionContext) -> datetime:
    """A new row's `updated_at`: the same instant as its `created_at`."""
    created = context.get_current_parameters().get("created_at")  # type: ignore[no-untyped-call]
    return created if isinstance(created, datetime) else utcnow()


class TimestampMixin:
    """`created_at` and `updated_at` (UTC), set by the database layer, never by hand."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=100)
    updated_at: Mapped[datetime] = mapped_column(
        default=_created_at, onupdate=utcnow, sort_order=101
    )


def enum_column(enum_class: type[StrEnum], *, name: str | None = None) -> Enum:
    """Return the column type of a StrEnum: its values in a VARCHAR, checked by a constraint.

    Args:
        enum_class: the enum; its member values are what the database stores.
        name: the constraint's name (default: the enum's name in snake_case, e.g.
            `LeadStatus` -> `lead_status`).

    Returns:
        The SQLAlchemy type, for `mapped_column(enum_column(LeadStatus), default=...)`.
    """
    return Enum(
        enum_class,
        name=name or _snake_case(enum_class.__name__),
        native_enum=False,
        create_constraint=True,
        length=max(16, *(len(member.value) for member in enum_class)),
        values_callable=lambda members: [member.value for member in members],
    )


def _snake_case(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
