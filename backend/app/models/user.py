"""The `users` table: accounts that log in and own leads."""

from enum import StrEnum

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.core.errors import EmailTakenError
from backend.app.models.base import Base, BigIntId, TimestampMixin, enum_column


class UserRole(StrEnum):
    """What a user may do: admins see and manage everything, members their own leads."""

    ADMIN = "admin"
    MEMBER = "member"


class User(TimestampMixin, Base):
    """An account. `email` is stored lower-cased, so uniqueness is case-insensitive."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("email", name="uq_users_email", info={"error": EmailTakenError}),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    hashed_password: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[UserRole] = mapped_column(enum_column(UserRole), default=UserRole.MEMBER)
    is_active: Mapped[bool] = mapped_column(default=True)

    @property
    def is_admin(self) -> bool:
        """Whether the user has the admin role."""
        return self.role is UserRole.ADMIN
