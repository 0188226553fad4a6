"""Wire shapes of leads."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, JsonValue

from backend.app.models.lead import LeadStatus
from backend.app.schemas.common import InputModel, OutputModel, Page
from backend.app.schemas.fields import Omittable, StrictEmail, multi_line, single_line

LeadName = Annotated[str, single_line(max_length=200)]
# Normalised to E.164 by `core.phone` with the DEFAULT_PHONE_REGION setting.
LeadPhone = Annotated[str, single_line(max_length=40)]
LeadSource = Annotated[str, single_line(max_length=100, min_length=0)]
LeadNotes = Annotated[str, multi_line(max_length=5000)]

_LEAD_EXAMPLE: dict[str, JsonValue] = {
    "name": "Grace Hopper",
    "phone": "+1 (415) 555-0100",
    "email": "grace@example.com",
    "status": "new",
    "source": "website",
    "notes": "Asked for a demo next week.",
}

_LEAD_READ_EXAMPLE: dict[str, JsonValue] = {
    **_LEAD_EXAMPLE,
    "id": 42,
    "phone": "+14155550100",
    "sms_opted_out": False,
    "owner_id": 1,
    "created_at": "2026-01-05T09:30:00Z",
    "updated_at": "2026-01-05T09:30:00Z",
}


class LeadCreate(InputModel):
    """A new lead.

    The server sets the id, the owner, `sms_opted_out` and the timestamps.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [_LEAD_EXAMPLE]})

    name: LeadName
    phone: LeadPhone | None = None
    email: StrictEmail | None = None
    status: LeadStatus = LeadStatus.NEW
    source: LeadSource | None = None
    notes: LeadNotes | None = None


class LeadUpdate(InputModel):
    """A partial update: omitted fields stay, `null` clears an optional field."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "contacted", "notes": None}]}
    )

    name: Omittable[LeadName] = None
    phone: LeadPhone | None = None
    email: StrictEmail | None = None
    status: Omittable[LeadStatus] = None
    source: LeadSource | None = None
    notes: LeadNotes | None = None


class LeadRead(OutputModel):
    """A lead as the API returns it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_LEAD_READ_EXAMPLE]})

    id: int
    name: str
    phone: str | None
    email: str | None
    status: LeadStatus
    source: str | None
    notes: str | None
    sms_opted_out: bool
    owner_id: int
    created_at: datetime
    updated_at: datetime


class LeadPage(Page[LeadRead]):
    """A page of leads."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_LEAD_READ_EXAMPLE], "total": 1, "limit": 50, "offset": 0}]
        }
    )


class LeadSort(StrEnum):
    """Sort orders of the lead list; a leading `-` means descending."""

    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    UPDATED_AT = "updated_at"
    UPDATED_AT_DESC = "-updated_at"
    NAME = "name"
    NAME_DESC = "-name"
