"""Stripe Checkout: the `CheckoutProvider` payments bill through, its Stripe client and a fake.

The app depends on `CheckoutProvider` only. `create_checkout_provider(settings)` picks:

- `StripeCheckout` (BILLING_PROVIDER=stripe): the official SDK's `StripeClient` on its async
  httpx transport, base URL from STRIPE_API_BASE_URL. Every create carries a Stripe
  Idempotency-Key stable for our payment, so a retry never opens a second session.
- `FakeCheckout` (BILLING_PROVIDER=fake, the default; refused in production): hands out a
  checkout page served by this app (`routers/dev_checkout.py`) whose Pay / Fail / Expire
  buttons send Stripe-shaped events, signed with STRIPE_WEBHOOK_SECRET, through the same
  webhook route Stripe calls.

`verify_webhook(...)` checks a Stripe-Signature and reads the event into a `WebhookEvent`.

This module is named like the SDK: `import stripe` below is an absolute import and gets the
SDK (the package is `backend.app.integrations.stripe`); never import it relatively.
"""

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Protocol

import stripe
from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from backend.app.core.circuit import CircuitBreaker
from backend.app.core.config import STRIPE_MAX_BACKOFF_SECONDS, BillingProvider, Settings
from backend.app.core.errors import (
    AppError,
    InvalidStripeSignatureError,
    InvalidWebhookPayloadError,
    PaymentProviderError,
    PaymentRejectedError,
)
from backend.app.schemas.fields import single_line

logger = logging.getLogger("app.integrations.stripe")

SIGNATURE_TOLERANCE_SECONDS = 300  # Stripe's default: refuse signatures older than 5 minutes
FAKE_CHECKOUT_PATH = "/dev/checkout"


# --- 1. The interface the app depends on ------------------------------------------------


@dataclass(frozen=True)
class CheckoutRequest:
    """What to charge, for which payment about which record.

    `idempotency_key` must be stable per payment. The record (`subject_type` is its table,
    `subject_id` its id) travels in the session's metadata, for people reading Stripe's
    dashboard; events find the payment through `client_reference_id`.
    """

    payment_id: int
    subject_type: str
    subject_id: int
    amount: int  # minor units
    currency: str  # lower-case ISO 4217
    description: str | None
    idempotency_key: str


@dataclass(frozen=True)
class CheckoutSession:
    """An open checkout session: its provider id (`cs_...`) and the page the payer uses."""

    id: str
    url: str


class CheckoutProvider(Protocol):
    """Opens hosted checkout pages. Implementations raise our errors, never the SDK's."""

    async def create_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a checkout session for one payment.

        Raises:
            PaymentProviderError: the provider is down, timed out or failed (502).
            PaymentRejectedError: the provider refused the amount or currency (422).
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class CheckoutOutcome(StrEnum):
    """What a webhook event means for the payment; final once applied."""

    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class WebhookEvent:
    """A verified Stripe event, reduced to what payments need.

    `outcome` is None for events that change nothing (unknown types, a completed session
    still unpaid); `payment_id` comes from the session's `client_reference_id`.
    """

    id: str
    type: str
    session_id: str | None
    payment_id: int | None
    outcome: CheckoutOutcome | None


# --- 2. The real client ---------------------------------------------------------------


class StripeCheckout:
    """Stripe Checkout through `stripe.StripeClient` with the SDK's async httpx transport.

    Retries are ours (tenacity), not the SDK's (`max_network_retries=0`): one visible
    policy, and a plain 429 is retried too, which the SDK would not do.
    """

    def __init__(
        self,
        *,
        secret_key: str,
        api_base_url: str,
        success_url: str,
        cancel_url: str,
        timeout: float,
        max_retries: int,
        circuit: CircuitBreaker,
        backoff_initial: float = 0.5,
    ) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout)
        self._circuit = circuit
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base_url},
            http_client=self._http,
            max_network_retries=0,
        )
        self._success_url = success_url
        self._cancel_url = cancel_url
        self._attempts = max_retries + 1
        self._backoff_initial = backoff_initial
        # The SDK's timeout is per HTTP phase; this bounds the whole call, retries included.
        self._budget = self._attempts * timeout + max_retries * STRIPE_MAX_BACKOFF_SECONDS

    async def create_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Create a Checkout Session (mode `payment`) for `request`.

        Raises:
            CircuitOpenError: Stripe failed too often in a row; it is not called for a while.
            PaymentProviderError: Stripe is down, timed out, or refused our credentials.
            PaymentRejectedError: Stripe refused the amount or currency.
        """
        self._circuit.check()
        try:
            session = await self._create_session(request)
        except PaymentProviderError:
            self._circuit.record_failure()
            raise
        self._circuit.record_success()
        return session

    async def _create_session(self, request: CheckoutRequest) -> CheckoutSession:
        try:
            async with asyncio.timeout(self._budget):
                session: stripe.checkout.Session = await self._retrying()(self._create, request)
        except TimeoutError as exc:
            logger.warning("stripe create timed out", extra={"payment_id": request.payment_id})
            raise PaymentProviderError from exc
        except stripe.StripeError as exc:
            raise _translate(exc, request.payment_id) from exc
        if not session.url:
            logger.error("stripe session has no url", extra={"payment_id": request.payment_id})
            raise PaymentProviderError
        return CheckoutSession(id=session.id, url=session.url)

    async def _create(self, request: CheckoutRequest) -> stripe.checkout.Session:
        return await self._client.v1.checkout.sessions.create_async(
            {
                "mode": "payment",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": request.currency,
                            "unit_amount": request.amount,
                            "product_data": {
                                "name": request.description or f"Payment {request.payment_id}"
                            },
                        },
                    }
                ],
                "success_url": self._success_url,
                "cancel_url": self._cancel_url,
                "client_reference_id": str(request.payment_id),
                "metadata": {
                    "payment_id": str(request.payment_id),
                    "subject_type": request.subject_type,
                    "subject_id": str(request.subject_id),
                },
            },
            {"idempotency_key": request.idempotency_key},
        )

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(
                multiplier=self._backoff_initial,
                max=STRIPE_MAX_BACKOFF_SECONDS,
                jitter=self._backoff_initial,
            ),
            retry=retry_if_exception(is_transient),
            before_sleep=_log_retry,
            reraise=True,
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.close_async()  # type: ignore[no-untyped-call]  # SDK lacks hints


def is_transient(exc: BaseException) -> bool:
    """Whether a failed Stripe call may succeed if retried with the same Idempotency-Key.

    Stripe's own rule first (`Stripe-Should-Retry`), then: connection errors and timeouts,
    409 (the same key still in flight), 429 and 5xx. Never card or validation errors.
    """
    if not isinstance(exc, stripe.StripeError):
        return False
    if isinstance(exc, stripe.APIConnectionError):
        return bool(exc.should_retry)
    headers = {key.lower(): value for key, value in (exc.headers or {}).items()}
    advice = headers.get("stripe-should-retry")
    if advice in {"true", "false"}:
        return advice == "true"
    status = exc.http_status or 0
    return status in {409, 429} or status >= 500


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    logger.warning(
        "stripe call failed, retrying",
        extra={
            "attempt": state.attempt_number,
            "error": type(error).__name__,
            "status": getattr(error, "http_status", None),
        },
    )


def _translate(exc: stripe.StripeError, payment_id: int) -> AppError:
    """Turn an SDK error into ours; log what helps, never the key or raw message."""
    logger.warning(
        "stripe create failed",
        extra={
            "payment_id": payment_id,
            "error": type(exc).__name__,
            "status": exc.http_status,
            "stripe_code": exc.code,
            "stripe_request_id": exc.request_id,
        },
    )
    if isinstance(exc, stripe.InvalidRequestError | stripe.CardError) and exc.http_status in {
        400,
        402,
    }:
        return PaymentRejectedError(_field_of(exc.param), exc.code)
    return PaymentProviderError()


def _field_of(param: str | None) -> str | None:
    """Name our request field behind a Stripe parameter like `line_items[0][price_data]...`."""
    param = param or ""
    if "currency" in param:
        return "currency"
    if "amount" in param:
        return "amount"
    if "name" in param:
        return "description"
    return None


# --- 3. The zero-setup fake -------------------------------------------------------------


class FakeCheckout:
    """Checkout without Stripe: session ids `cs_test_...`, pages served by this app."""

    def __init__(self, *, public_base_url: str) -> None:
        self._base_url = public_base_url.rstrip("/")

    async def create_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Return a new session whose page is `<PUBLIC_BASE_URL>/dev/checkout/<id>`."""
        session_id = f"cs_test_{secrets.token_hex(16)}"
        return CheckoutSession(
            id=session_id, url=f"{self._base_url}{FAKE_CHECKOUT_PATH}/{session_id}"
        )

    async def aclose(self) -> None:
        """Nothing to release."""


# The fake page's buttons and the Stripe event each sends: (type, session status, payment_status).
FAKE_OUTCOMES: dict[str, tuple[str, str, str]] = {
    "pay": ("checkout.session.completed", "complete", "paid"),
    "fail": ("checkout.session.async_payment_failed", "complete", "unpaid"),
    "expire": ("checkout.session.expired", "expired", "unpaid"),
}


def fake_checkout_event(
    *, action: str, session_id: str, payment_id: int, amount: int, currency: str
) -> dict[str, JsonValue]:
    """Build the Stripe event the fake page sends for `action` (a key of `FAKE_OUTCOMES`)."""
    event_type, status, payment_status = FAKE_OUTCOMES[action]
    now = int(time.time())
    return {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": stripe.api_version,
        "created": now,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "mode": "payment",
                "status": status,
                "payment_status": payment_status,
                "amount_total": amount,
                "currency": currency,
                "client_reference_id": str(payment_id),
                "metadata": {"payment_id": str(payment_id)},
                "created": now,
            }
        },
    }


def sign_payload(payload: str, secret: str, *, timestamp: int | None = None) -> str:
    """Return a `Stripe-Signature` header for `payload`: `t=<unix>,v1=<hex HMAC-SHA256>`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


# --- 4. The factory ---------------------------------------------------------------------


def create_checkout_provider(settings: Settings) -> CheckoutProvider:
    """Return the provider BILLING_PROVIDER names; call `aclose()` at shutdown."""
    if settings.billing_provider is BillingProvider.FAKE:
        return FakeCheckout(public_base_url=settings.public_base_url)
    assert settings.stripe_secret_key is not None  # Settings refuses stripe without a key
    return StripeCheckout(
        secret_key=settings.stripe_secret_key.get_secret_value(),
        api_base_url=settings.stripe_api_base_url,
        success_url=settings.checkout_success_url,
        cancel_url=settings.checkout_cancel_url,
        timeout=settings.stripe_timeout_seconds,
        max_retries=settings.stripe_max_retries,
        circuit=CircuitBreaker(
            name="Stripe",
            failure_threshold=settings.stripe_circuit_failures,
            open_seconds=settings.stripe_circuit_open_seconds,
        ),
    )


# --- 5. Webhooks ------------------------------------------------------------------------


_Word = Annotated[str, single_line(max_length=255)]


class _EventObject(BaseModel):
    model_config = ConfigDict(extra="ignore")

    object: _Word | None = None
    id: _Word | None = None
    client_reference_id: _Word | None = None
    payment_status: _Word | None = None


class _EventData(BaseModel):
    object: _EventObject


class _Event(BaseModel):
    """The fields of an event we read, bounded as our tables store them."""

    id: _Word
    type: Annotated[str, single_line(max_length=100)]
    data: _EventData


def verify_webhook(payload: bytes, signature: str | None, secret: str) -> WebhookEvent:
    """Check `signature` over the raw `payload` (tolerance 300 s) and read the event.

    Raises:
        InvalidStripeSignatureError: no or a wrong signature, or a stale timestamp.
        InvalidWebhookPayloadError: a signed body that is not a Stripe event we can store
            (e.g. an id over 255 characters or with control characters).
    """
    try:
        stripe.Webhook.construct_event(
            payload, signature, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise InvalidStripeSignatureError from exc
    try:
        event = _Event.model_validate_json(payload)
    except ValidationError as exc:
        raise InvalidWebhookPayloadError from exc
    session = event.data.object
    is_session = session.object == "checkout.session"
    return WebhookEvent(
        id=event.id,
        type=event.type,
        session_id=session.id if is_session else None,
        payment_id=_payment_id(session.client_reference_id) if is_session else None,
        outcome=_outcome(event.type, session.payment_status) if is_session else None,
    )


def _outcome(event_type: str, payment_status: str | None) -> CheckoutOutcome | None:
    if event_type == "checkout.session.completed":
        return CheckoutOutcome.PAID if payment_status == "paid" else None
    return {
        "checkout.session.async_payment_succeeded": CheckoutOutcome.PAID,
        "checkout.session.async_payment_failed": CheckoutOutcome.FAILED,
        "checkout.session.expired": CheckoutOutcome.EXPIRED,
    }.get(event_type)


def _payment_id(reference: str | None) -> int | None:
    if not reference or not (reference.isascii() and reference.isdigit()):
        return None
    if len(reference) > 18:
        return None
    return int(reference)
