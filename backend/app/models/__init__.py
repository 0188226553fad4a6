"""SQLAlchemy models, one module per table. Import every model here so Alembic sees it."""

from backend.app.models.base import Base
from backend.app.models.lead import Lead, LeadStatus
from backend.app.models.user import User, UserRole

__all__ = ["Base", "Lead", "LeadStatus", "User", "UserRole"]
