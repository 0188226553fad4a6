"""The `leads` table. A prospect a user logs and follows up."""

from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, exists
from sqlalchemy.orm import Mapped, column_property, mapped_column

from backend.app.models.base import Base, BigIntId, TimestampMixin, enum_column
from backend.app.models.sms_opt_out import SmsOptOut


class LeadStatus(StrEnum):
    """Where a lead stands in the sales pipeline."""

    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    WON = "won"
    LOST = "lost"


class Lead(TimestampMixin, Base):
    """A prospect a user logs and follows up.

    Owned by one user; indexes serve every filter and sort of the list.
    """

    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_owner_id_created_at_id", "owner_id", "created_at", "id"),
        Index("ix_leads_owner_id_updated_at_id", "owner_id", "updated_at", "id"),
        Index("ix_leads_owner_id_name_id", "owner_id", "name", "id"),
        Index("ix_leads_owner_id_status", "owner_id", "status"),
        Index("ix_leads_created_at_id", "created_at", "id"),
        Index("ix_leads_updated_at_id", "updated_at", "id"),
        Index("ix_leads_name_id", "name", "id"),
        Index("ix_leads_phone", "phone"),
        Index("ix_leads_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[LeadStatus] = mapped_column(enum_column(LeadStatus), default=LeadStatus.NEW)
    source: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    # The lead's Patient in the EHR, once converted (`crud/lead_ehr.py`); a FHIR id.
    ehr_patient_id: Mapped[str | None] = mapped_column(String(64))
    # Whether the phone number replied STOP (kept per number in sms_opt_outs).
    sms_opted_out: Mapped[bool] = column_property(
        exists().where(SmsOptOut.phone == phone), expire_on_flush=False
    )
