"""Billing through Stripe Checkout (or the zero-setup fake checkout); see `stripe.py`."""

from backend.app.integrations.stripe.stripe import (
    FAKE_CHECKOUT_PATH,
    FAKE_OUTCOMES,
    CheckoutOutcome,
    CheckoutProvider,
    CheckoutRequest,
    CheckoutSession,
    FakeCheckout,
    StripeCheckout,
    WebhookEvent,
    create_checkout_provider,
    fake_checkout_event,
    is_transient,
    sign_payload,
    verify_webhook,
)

__all__ = [
    "FAKE_CHECKOUT_PATH",
    "FAKE_OUTCOMES",
    "CheckoutOutcome",
    "CheckoutProvider",
    "CheckoutRequest",
    "CheckoutSession",
    "FakeCheckout",
    "StripeCheckout",
    "WebhookEvent",
    "create_checkout_provider",
    "fake_checkout_event",
    "is_transient",
    "sign_payload",
    "verify_webhook",
]
