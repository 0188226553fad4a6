"""Form payloads Twilio posts to our webhooks (only the fields we use; Twilio sends more)."""

from pydantic import BaseModel, ConfigDict, Field


class TwilioStatusCallback(BaseModel):
    """A status callback for a message we sent."""

    model_config = ConfigDict(extra="allow")

    MessageSid: str = Field(max_length=64)
    MessageStatus: str = Field(max_length=32)
    ErrorCode: str | None = Field(default=None, max_length=16)


class TwilioInboundMessage(BaseModel):
    """A text a lead sent to one of our numbers."""

    model_config = ConfigDict(extra="allow")

    MessageSid: str = Field(max_length=64)
    From: str = Field(max_length=40)
    To: str = Field(default="", max_length=40)
    Body: str = Field(default="", max_length=1600)
    OptOutType: str | None = Field(default=None, max_length=16)
