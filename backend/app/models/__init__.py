"""SQLAlchemy models, one module per table. Import every model here so Alembic sees it."""

from backend.app.models.audit_event import AuditAction, AuditEvent
from backend.app.models.base import Base
from backend.app.models.idempotency_key import IdempotencyKey
from backend.app.models.lead import Lead, LeadStatus
from backend.app.models.message import Message, MessageDirection, MessageStatus
from backend.app.models.payment import Payment, PaymentStatus
from backend.app.models.sms_opt_out import SmsOptOut
from backend.app.models.sms_usage import SmsUsage
from backend.app.models.stripe_event import StripeEvent
from backend.app.models.user import User, UserRole

__all__ = [
    "AuditAction",
    "AuditEvent",
    "Base",
    "IdempotencyKey",
    "Lead",
    "LeadStatus",
    "Message",
    "MessageDirection",
    "MessageStatus",
    "Payment",
    "PaymentStatus",
    "SmsOptOut",
    "SmsUsage",
    "StripeEvent",
    "User",
    "UserRole",
]
