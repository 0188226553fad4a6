"""The `sms_opt_outs` table: phone numbers that replied STOP, as the SMS provider keeps them."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from backend.app.models.base import Base, utcnow


class SmsOptOut(Base):
    """A number that opted out: no text goes to it, whatever record it is about, until START.

    Kept per number, as Twilio keeps it, so STOP from a number stops every record's texts
    to it, and a record created later with that number is opted out from the start.
    """

    __tablename__ = "sms_opt_outs"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164
    opted_out_at: Mapped[datetime] = mapped_column(default=utcnow)
