"""The answer of the Stripe webhook (`routers/webhooks_stripe.py`)."""

from pydantic import BaseModel, ConfigDict


class WebhookAck(BaseModel):
    """The answer to a webhook the app accepted (handled, duplicate or ignored)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"received": True}]})

    received: bool = True
