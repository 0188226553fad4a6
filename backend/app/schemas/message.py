"""Wire shapes of a lead's messages (`/leads/{id}/messages`: SMS follow-ups)."""

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, JsonValue, field_validator

from backend.app.models.base import utcnow
from backend.app.models.message import MessageDirection, MessageStatus
from backend.app.schemas.common import InputModel, OutputModel, Page
from backend.app.schemas.fields import UtcDateTime, multi_line

_MESSAGE_EXAMPLE: dict[str, JsonValue] = {
    "id": 7,
    "lead_id": 42,
    "direction": "outbound",
    "body": "Hi Grace, following up on our call. Free for a demo Tuesday?",
    "status": "delivered",
    "send_at": None,
    "sent_at": "2026-01-05T09:30:02Z",
    "provider_message_id": "SM0123456789abcdef0123456789abcdef",
    "error_code": None,
    "error_message": None,
    "created_at": "2026-01-05T09:30:00Z",
    "updated_at": "2026-01-05T09:30:09Z",
}

MessageBody = Annotated[str, multi_line(max_length=1600, min_length=1, strip=True)]


class MessageCreate(InputModel):
    """A text to queue for a lead: now (`queued`), or at `send_at` (`scheduled`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"body": "Hi Grace, following up on our call. Free for a demo Tuesday?"},
                {
                    "body": "Reminder: your demo is tomorrow at 10.",
                    "send_at": "2026-12-01T09:00:00Z",
                },
            ]
        }
    )

    body: MessageBody
    send_at: UtcDateTime | None = Field(
        default=None,
        description="When to send: in the future, ISO 8601 with an offset; returned in UTC. "
        "Omit to send now.",
    )

    @field_validator("send_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= utcnow():
            raise ValueError("must be in the future")
        return value


class MessageRead(OutputModel):
    """A message as the API returns it.

    `status`: `scheduled` -> `queued` -> `sending` -> `sent` -> `delivered` | `undelivered`,
    or `failed` (with the provider's `error_code` and `error_message`); `canceled` from
    `scheduled`. Inbound replies are `received`.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [_MESSAGE_EXAMPLE]})

    id: int
    lead_id: int = Field(validation_alias="subject_id", description="The lead texted.")
    direction: MessageDirection
    body: str
    status: MessageStatus
    send_at: datetime | None
    sent_at: datetime | None
    provider_message_id: str | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime


class MessagePage(Page[MessageRead]):
    """A page of messages, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_MESSAGE_EXAMPLE], "total": 1, "limit": 50, "offset": 0}]
        }
    )
