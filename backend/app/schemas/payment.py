"""Wire shapes of a lead's payments (`/leads/{id}/payments`)."""

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, JsonValue, Strict, StringConstraints

from backend.app.models.payment import PaymentStatus
from backend.app.schemas.common import InputModel, OutputModel, Page
from backend.app.schemas.fields import integer, single_line

Amount = Annotated[int, integer(ge=1, le=99_999_999), Field(description="Minor units.")]
Currency = Annotated[
    str,
    Strict(),
    StringConstraints(pattern=r"^[A-Za-z]{3}$", to_lower=True),
    Field(description="ISO 4217 code, 3 letters; returned lower case."),
]
Description = Annotated[str, single_line(max_length=500)]

_PAYMENT_EXAMPLE: dict[str, JsonValue] = {
    "amount": 5000,
    "currency": "usd",
    "description": "Onboarding package",
}


_PAYMENT_READ_EXAMPLE: dict[str, JsonValue] = {
    **_PAYMENT_EXAMPLE,
    "id": 7,
    "lead_id": 42,
    "status": "pending",
    "checkout_url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
    "provider_payment_id": "cs_test_a1b2c3",
    "created_at": "2026-01-05T09:30:00Z",
    "updated_at": "2026-01-05T09:30:00Z",
}


class PaymentCreate(InputModel):
    """A charge to bill a lead; the server opens its checkout session."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PAYMENT_EXAMPLE]})

    amount: Amount
    currency: Currency
    description: Description | None = None


class PaymentRead(OutputModel):
    """A payment as the API returns it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PAYMENT_READ_EXAMPLE]})

    id: int
    lead_id: int = Field(validation_alias="subject_id", description="The lead billed.")
    amount: int
    currency: str
    description: str | None
    status: PaymentStatus = Field(
        description="`pending` until checkout ends; then `paid`, `failed` or `expired` (final)."
    )
    checkout_url: str | None = Field(description="The page the lead pays at.")
    provider_payment_id: str | None = Field(description="The checkout session id (`cs_...`).")
    created_at: datetime
    updated_at: datetime


class PaymentPage(Page[PaymentRead]):
    """A page of payments, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_PAYMENT_READ_EXAMPLE], "total": 1, "limit": 50, "offset": 0}]
        }
    )
