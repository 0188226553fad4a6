"""Form payloads Twilio posts to our webhooks (only the fields we use; Twilio sends more)."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict

from backend.app.schemas.fields import multi_line, single_line

Sid = Annotated[str, single_line(max_length=64)]
Word = Annotated[str, single_line(max_length=32)]
PhoneText = Annotated[str, single_line(max_length=40, min_length=0)]


class TwilioStatusCallback(BaseModel):
    """A status callback for a message we sent."""

    model_config = ConfigDict(extra="allow")

    MessageSid: Sid
    MessageStatus: Word
    ErrorCode: Annotated[str, single_line(max_length=16, min_length=0)] | None = None


class TwilioInboundMessage(BaseModel):
    """A text a lead sent to one of our numbers."""

    model_config = ConfigDict(extra="allow")

    MessageSid: Sid
    From: Annotated[str, single_line(max_length=40)]
    To: PhoneText = ""
    Body: Annotated[str, multi_line(max_length=1600)] = ""
    OptOutType: Annotated[str, single_line(max_length=16, min_length=0)] | None = None
