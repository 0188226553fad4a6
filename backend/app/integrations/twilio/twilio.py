"""Twilio SMS: the `SmsSender` interface, the Twilio client, the console sender, the factory.

The client sends with httpx rather than the twilio SDK: the SDK's async client ignores its
timeout and brings a second HTTP stack (aiohttp), while a send is one form POST. The SDK is
still used for what it does well: `RequestValidator`, which checks webhook signatures.

Retry rules (Messages have no idempotency key, so a repeated create can mean a second text):
- 429 (Twilio 20429: "not processed, safe to retry") and connection failures (the request
  never reached Twilio) raise `SmsProviderUnavailableError` and are retried here, at most
  TWILIO_MAX_RETRIES times, with exponential backoff and jitter and never sooner than
  `Retry-After` (capped at TWILIO_MAX_RETRY_WAIT_SECONDS).
- 5xx, a timeout or a dropped connection after the request was sent raise
  `SmsOutcomeUnknownError` and are never retried here: Twilio may have accepted the text.
  The worker looks it up with `find_messages` before it tries again.
- Any other 4xx is permanent: `SmsProviderError` (`SmsRecipientOptedOutError` for 21610).

Lookups (`find_messages`) settle an unknown outcome, so they must see the whole time window
since the attempt, however many texts went to that number since:
- They follow Twilio's paging (`next_page_uri`, LOOKUP_PAGE_SIZE messages a page, newest
  first) until the list ends or a page reaches a message created and sent before the
  window. Both dates must be before it: Twilio's docs say the list is sorted by DateSent,
  and a message created earlier may have been sent later. Only the query of
  `next_page_uri` is used, on our own host and path, so credentials never go elsewhere.
- Each page is a GET, safe to repeat: it keeps the per-call timeout and is retried on any
  transient failure. The whole lookup takes no longer than one send may (tries x timeout
  plus the waits), so WORKER_LEASE_SECONDS still covers a lookup plus a send; past that it
  raises `SmsProviderUnavailableError` and the worker looks up again later.
- LOOKUP_MAX_PAGES is a safety net. If that many pages do not reach back to the window, the
  text may be among the unread ones, so the lookup raises `SmsOutcomeUnknownError`: the
  worker keeps the row's outcome unknown and never re-sends blindly; it looks up again after
  its backoff (a status callback may settle the row meanwhile) and, after SMS_MAX_ATTEMPTS,
  marks it `failed` with `sms_outcome_unknown`.
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter
from twilio.request_validator import RequestValidator

from backend.app.core.config import Settings, SmsProvider
from backend.app.core.errors import (
    SmsOutcomeUnknownError,
    SmsProviderError,
    SmsProviderUnavailableError,
    SmsRecipientOptedOutError,
)

logger = logging.getLogger("app.twilio")

OPTED_OUT_CODE = 21610
# Whole-message keywords, case-insensitive (Twilio's defaults; REVOKE/OPTOUT since 2025-05).
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
# Keep-alive connections per client. httpcore's pool work grows with connections x waiting
# requests, so a few busy connections beat one per request in flight (measured: 2-3x).
MAX_CONNECTIONS = 10
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Lookups: Twilio's largest page (fewest round trips), and a cap on pages as a safety net:
# 10 pages reach back past 10,000 texts to one number since the attempt.
LOOKUP_PAGE_SIZE = 1000
LOOKUP_MAX_PAGES = 10


@dataclass(frozen=True)
class SentSms:
    """What the provider answered to a send: its message id and its own status word."""

    sid: str
    status: str


@dataclass(frozen=True)
class ProviderMessage:
    """A message as the provider lists it (used to settle a send whose outcome is unknown)."""

    sid: str
    to: str
    body: str
    status: str
    created_at: datetime | None
    error_code: int | None
    error_message: str | None
    sent_at: datetime | None = None


class SmsSender(Protocol):
    """What the app needs from an SMS provider."""

    async def send(self, *, to: str, body: str, status_callback: str | None) -> SentSms:
        """Send `body` to `to` (E.164); the provider posts status changes to `status_callback`.

        Raises:
            SmsProviderError: refused for good (`SmsRecipientOptedOutError` for an opt-out).
            SmsProviderUnavailableError: surely not accepted; safe to try again later.
            SmsOutcomeUnknownError: may have been accepted; look it up before trying again.
        """
        ...

    async def find_messages(self, *, to: str, created_after: datetime) -> list[ProviderMessage]:
        """Return every message to `to` the provider created after `created_after`.

        Raises:
            SmsProviderError: the lookup failed (`SmsProviderUnavailableError` if transient).
            SmsOutcomeUnknownError: too many messages to read them all; whether the text
                went out is still unknown.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class TwilioClient:
    """Twilio's Messages API over httpx, with enforced timeouts and safe retries."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None,
        messaging_service_sid: str | None,
        base_url: str,
        timeout_seconds: float,
        max_retries: int,
        max_retry_wait_seconds: float,
        max_connections: int = 100,
        lookup_page_size: int = LOOKUP_PAGE_SIZE,
        lookup_max_pages: int = LOOKUP_MAX_PAGES,
    ) -> None:
        self._sender = (
            {"MessagingServiceSid": messaging_service_sid}
            if messaging_service_sid
            else {"From": from_number or ""}
        )
        self._path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._timeout = timeout_seconds
        self._max_retries = max_retries
        self._max_wait = max_retry_wait_seconds
        self._page_size = lookup_page_size
        self._max_pages = lookup_max_pages
        # Settings.sms_send_budget_seconds: the lease is sized for one lookup plus one send.
        tries = max_retries + 1
        self._lookup_budget = tries * timeout_seconds + (tries - 1) * max_retry_wait_seconds
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=httpx.BasicAuth(account_sid, auth_token),
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"Accept": "application/json"},
        )

    async def send(self, *, to: str, body: str, status_callback: str | None) -> SentSms:
        """Create a message (see `SmsSender.send`); retries only what Twilio did not accept."""
        form = {"To": to, "Body": body, **self._sender}
        if status_callback:
            form["StatusCallback"] = status_callback
        retrying = self._retrying(SmsProviderUnavailableError)
        data: dict[str, Any] = await retrying(self._create_once, form)
        return SentSms(sid=str(data["sid"]), status=str(data.get("status") or "queued"))

    async def find_messages(self, *, to: str, created_after: datetime) -> list[ProviderMessage]:
        """List the messages to `to` created since `created_after`, page by page, newest first.

        Raises:
            SmsProviderUnavailableError: a page could not be read, or the lookup took longer
                than one send may.
            SmsOutcomeUnknownError: LOOKUP_MAX_PAGES pages did not reach back to the window.
        """
        start = created_after.replace(microsecond=0)  # Twilio's dates are whole seconds
        params = httpx.QueryParams({"To": to, "PageSize": str(self._page_size)})
        found: list[ProviderMessage] = []
        try:
            async with asyncio.timeout(self._lookup_budget):
                for _ in range(self._max_pages):
                    page = await self._read_page(params)
                    listed = [_provider_message(item) for item in page.get("messages") or []]
                    found += [m for m in listed if m.created_at is None or m.created_at >= start]
                    next_uri = page.get("next_page_uri")
                    if not isinstance(next_uri, str) or any(_before(m, start) for m in listed):
                        return found
                    params = httpx.URL(next_uri).params
        except TimeoutError as exc:
            raise SmsProviderUnavailableError("The Twilio lookup took too long.") from exc
        logger.warning("sms lookup stopped at its page cap", extra={"pages": self._max_pages})
        raise SmsOutcomeUnknownError(
            f"Read {self._max_pages} pages of texts to this number without reaching back to "
            "the attempt; it may have been sent, so it is not sent again."
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def _retrying(self, *retry_on: type[SmsProviderError]) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception_type(retry_on),
            stop=stop_after_attempt(self._max_retries + 1),
            wait=self._wait,
            reraise=True,
        )

    def _wait(self, retry_state: RetryCallState) -> float:
        """Exponential backoff with jitter, but never sooner than the provider's Retry-After."""
        backoff = wait_exponential_jitter(multiplier=0.5, max=self._max_wait)(retry_state)
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None) or 0.0
        return float(min(self._max_wait, max(backoff, retry_after)))

    async def _create_once(self, form: dict[str, str]) -> dict[str, Any]:
        return await self._request("POST", self._path, data=form)

    async def _read_page(self, params: httpx.QueryParams) -> dict[str, Any]:
        """Read one page of the message list, retried like any lookup."""
        retrying = self._retrying(SmsProviderUnavailableError, SmsOutcomeUnknownError)
        try:
            page: dict[str, Any] = await retrying(self._list_once, params)
        except SmsOutcomeUnknownError as exc:  # a failed GET changed nothing
            raise SmsProviderUnavailableError(exc.message, status=exc.status) from exc
        return page

    async def _list_once(self, params: httpx.QueryParams) -> dict[str, Any]:
        return await self._request("GET", self._path, params=params)

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Make one call within the timeout and translate every failure into our errors."""
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.request(method, path, **kwargs)
        except _CONNECT_ERRORS as exc:
            raise SmsProviderUnavailableError(f"Twilio unreachable: {type(exc).__name__}") from exc
        except (httpx.TransportError, TimeoutError) as exc:
            raise SmsOutcomeUnknownError(f"No answer from Twilio: {type(exc).__name__}") from exc
        if response.is_success:
            data = _json_object(response)
            if data is None:
                raise SmsOutcomeUnknownError("Twilio answered success with an unreadable body.")
            return data
        raise _error_for(response)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _error_for(response: httpx.Response) -> SmsProviderError:
    """Translate an error response (`{"code", "message", "status"}`) into our error type."""
    data = _json_object(response) or {}
    code = data.get("code") if isinstance(data.get("code"), int) else None
    text = str(data.get("message") or f"Twilio answered HTTP {response.status_code}.")[:500]
    status = response.status_code
    if status == 429:
        return SmsProviderUnavailableError(
            text, provider_code=code, status=status, retry_after=_retry_after(response)
        )
    if status >= 500:
        return SmsOutcomeUnknownError(text, provider_code=code, status=status)
    if code == OPTED_OUT_CODE:
        return SmsRecipientOptedOutError(text, provider_code=code, status=status)
    return SmsProviderError(text, provider_code=code, status=status)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _provider_message(item: dict[str, Any]) -> ProviderMessage:
    error_code = item.get("error_code")
    return ProviderMessage(
        sid=str(item.get("sid", "")),
        to=str(item.get("to", "")),
        body=str(item.get("body", "")),
        status=str(item.get("status", "")),
        created_at=_date(item.get("date_created")),
        error_code=int(error_code) if isinstance(error_code, int | str) and error_code else None,
        error_message=item.get("error_message"),
        sent_at=_date(item.get("date_sent")),
    )


def _date(value: object) -> datetime | None:
    """Read an RFC 2822 date (`Thu, 24 Aug 2023 05:01:45 +0000`); UTC if it names no zone."""
    if not isinstance(value, str):
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _before(message: ProviderMessage, start: datetime) -> bool:
    """Whether `message` was both created and sent before `start`, in either sort order."""
    return (
        message.created_at is not None
        and message.created_at < start
        and message.sent_at is not None
        and message.sent_at < start
    )


class ConsoleSmsSender:
    """The zero-setup provider: logs each text and reports it sent with a Twilio-shaped id."""

    async def send(self, *, to: str, body: str, status_callback: str | None) -> SentSms:
        """Log the text's id and length (never the number or the body); return a fresh id.

        The message row (`provider_message_id` = the logged `sid`) holds number and body.
        """
        sid = f"SM{uuid.uuid4().hex}"
        logger.info(
            "sms not sent (SMS_PROVIDER=console)", extra={"sid": sid, "body_chars": len(body)}
        )
        return SentSms(sid=sid, status="sent")

    async def find_messages(self, *, to: str, created_after: datetime) -> list[ProviderMessage]:
        """Nothing was really sent, so nothing is ever found."""
        return []

    async def aclose(self) -> None:
        """Nothing to release."""


def create_twilio_client(settings: Settings) -> SmsSender:
    """Return the sender SMS_PROVIDER names: Twilio, or the console sender."""
    if settings.sms_provider is not SmsProvider.TWILIO:
        return ConsoleSmsSender()
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    return TwilioClient(
        account_sid=settings.twilio_account_sid or "",
        auth_token=token,
        from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        base_url=settings.twilio_api_base_url,
        timeout_seconds=settings.twilio_timeout_seconds,
        max_retries=settings.twilio_max_retries,
        max_retry_wait_seconds=settings.twilio_max_retry_wait_seconds,
        max_connections=min(settings.worker_concurrency, MAX_CONNECTIONS),
    )


def is_valid_signature(
    *, auth_token: str | None, url: str, params: dict[str, list[str]], signature: str | None
) -> bool:
    """Whether `signature` (X-Twilio-Signature) signs `url` and every posted parameter.

    Args:
        auth_token: TWILIO_AUTH_TOKEN; without one nothing is valid.
        url: the exact public URL Twilio called, query string included.
        params: every form parameter posted, each with all its values.
        signature: the header's value, if any.
    """
    if not auth_token or not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, _MultiParams(params), signature))


class _MultiParams(dict[str, list[str]]):
    """Form parameters in the shape `RequestValidator` reads repeated values from."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def opt_keyword(body: str, opt_out_type: str | None = None) -> str | None:
    """Return "STOP" or "START" if an inbound text is an opt-out or opt-in keyword, else None.

    Only a whole-message match counts ("Stop please" does not). `opt_out_type` is Twilio's
    `OptOutType`, set when Advanced Opt-Out (custom keywords) is on.
    """
    if opt_out_type and opt_out_type.upper() in {"STOP", "START"}:
        return opt_out_type.upper()
    word = body.strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return "STOP"
    if word in OPT_IN_KEYWORDS:
        return "START"
    return None
