"""How the FHIR client talks HTTP: timeouts, retries, the circuit, tokens, error translation.

Retry rules (tenacity, at most FHIR_MAX_RETRIES more tries, exponential backoff with jitter,
never sooner than `Retry-After`, and not at all when `Retry-After` exceeds
FHIR_MAX_RETRY_WAIT_SECONDS):
- Any call: a connection that could not be made, and 429. The EHR did not process it.
- Safe calls only (reads, searches, conditional creates, token requests): also 502, 503, 504,
  a timeout and a dropped connection. A conditional create repeated after a lost answer finds
  the resource the first try made (`If-None-Exist`) instead of making a second one.
- Never: a plain create or an update after the request may have been applied, a 500, or any
  other 4xx. A 401 to a SMART token drops the token, fetches a new one and tries once more.
Every HTTP call is limited to FHIR_TIMEOUT_SECONDS (by httpx and by `asyncio.timeout`).
After FHIR_CIRCUIT_FAILURES outages in a row (unreachable, no answer, 5xx), calls fail at
once with `CircuitOpenError` (503) for FHIR_CIRCUIT_OPEN_SECONDS.

Errors come back from FHIR servers as `OperationOutcome`s; `error_for` turns them into our
types (core/errors.py) carrying the outcome's text, never the raw body. Logs carry statuses
and outcome codes only: never a token, a body or a patient's data.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import partial

import httpx
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from backend.app.core.circuit import CircuitBreaker
from backend.app.core.errors import (
    AppError,
    EhrAuthError,
    EhrError,
    EhrMultipleMatchesError,
    EhrNoAnswerError,
    EhrRequestRejectedError,
    EhrResourceDeletedError,
    EhrResourceNotFoundError,
    EhrUnavailableError,
    EhrVersionConflictError,
)
from backend.app.integrations.fhir.resources import FhirJson, OperationOutcome
from backend.app.integrations.fhir.smart import AccessTokenSource

logger = logging.getLogger("app.integrations.fhir")

FHIR_JSON = "application/fhir+json"
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class FhirCall:
    """One HTTP request; `safe` says whether repeating it cannot duplicate an effect."""

    method: str
    url: str
    safe: bool
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    content: bytes | None = None
    form: Callable[[], dict[str, str]] | None = None  # built anew for every try


class FhirExchange:
    """Sends `FhirCall`s with a bearer token, a timeout, safe retries and a circuit breaker."""

    def __init__(
        self,
        *,
        auth: AccessTokenSource | None,
        timeout_seconds: float,
        max_retries: int,
        max_retry_wait_seconds: float,
        circuit: CircuitBreaker,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._auth = auth
        self._timeout = timeout_seconds
        self._attempts = max_retries + 1
        self._max_wait = max_retry_wait_seconds
        self._circuit = circuit
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0)),
            headers={"Accept": FHIR_JSON},
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def request(self, call: FhirCall) -> httpx.Response:
        """Send `call` with a bearer token and retries; renew the token once on a 401.

        Returns:
            The first answer that is not transient (any status: the caller translates it).

        Raises:
            CircuitOpenError: the EHR failed too often in a row; not called.
            EhrUnavailableError: unreachable, or still 429/502/503/504 after the retries.
            EhrNoAnswerError: timed out or dropped after the request was sent.
            EhrAuthError: the token endpoint refused our credentials.
        """
        token = await self._bearer()
        response = await self._exchange(call, token)
        if response.status_code == 401 and token and self._auth and self._auth.invalidate(token):
            logger.info("fhir token refused, fetching a new one")
            response = await self._exchange(call, await self._bearer())
        return response

    async def _bearer(self) -> str | None:
        return await self._auth.token(self._send_for_token) if self._auth else None

    async def _send_for_token(
        self, method: str, url: str, form: Callable[[], dict[str, str]] | None
    ) -> httpx.Response:
        """The sender the token source uses: no bearer token, always safe to retry."""
        headers = {"Accept": "application/json"}
        return await self._exchange(FhirCall(method, url, safe=True, headers=headers, form=form))

    async def _exchange(self, call: FhirCall, token: str | None = None) -> httpx.Response:
        """One logical request: the circuit, then tries until an answer that is not transient."""
        self._circuit.check()
        retrying = AsyncRetrying(
            retry=retry_if_exception(partial(_retryable, safe=call.safe, max_wait=self._max_wait)),
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            response: httpx.Response = await retrying(self._send, call, token)
        except (EhrUnavailableError, EhrNoAnswerError):
            self._circuit.record_failure()
            raise
        if response.status_code >= 500:
            self._circuit.record_failure()
        else:
            self._circuit.record_success()
        return response

    async def _send(self, call: FhirCall, token: str | None) -> httpx.Response:
        """One try within the timeout; a transient answer or failure raises our error."""
        headers = {**call.headers, **({"Authorization": f"Bearer {token}"} if token else {})}
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.request(
                    call.method,
                    call.url,
                    headers=headers,
                    params=call.params,
                    content=call.content,
                    data=call.form() if call.form else None,
                )
        except _CONNECT_ERRORS as exc:
            raise EhrUnavailableError(f"The EHR is unreachable ({type(exc).__name__}).") from exc
        except (httpx.TransportError, TimeoutError) as exc:
            raise EhrNoAnswerError from exc
        if response.status_code in TRANSIENT_STATUSES:
            raise EhrUnavailableError(
                f"The EHR is unavailable (HTTP {response.status_code}){_said(response)}",
                status=response.status_code,
                retry_after=retry_after(response),
            )
        return response

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, but never sooner than the EHR's Retry-After."""
        backoff = wait_exponential_jitter(multiplier=0.5, max=self._max_wait)(state)
        error = state.outcome.exception() if state.outcome else None
        wanted = getattr(error, "retry_after", None) or 0.0
        return float(min(self._max_wait, max(backoff, wanted)))


def _retryable(exc: BaseException, *, safe: bool, max_wait: float) -> bool:
    """Whether to try again: see the module docstring's retry rules."""
    if isinstance(exc, EhrUnavailableError):
        if exc.retry_after is not None and exc.retry_after > max_wait:
            return False  # the EHR asked for more patience than one request can have
        return safe or exc.status in {None, 429}
    return safe and isinstance(exc, EhrNoAnswerError)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    logger.warning(
        "fhir call failed, retrying",
        extra={
            "attempt": state.attempt_number,
            "error": type(error).__name__,
            "status": getattr(error, "status", None),
        },
    )


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds, from a number or an HTTP date; None if absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def json_object(response: httpx.Response) -> FhirJson | None:
    """The response's JSON object, or None if the body is not one."""
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def outcome_of(response: httpx.Response) -> OperationOutcome | None:
    """The `OperationOutcome` the response carries, if it carries one."""
    data = json_object(response)
    if data is None or data.get("resourceType") != "OperationOutcome":
        return None
    try:
        return OperationOutcome.model_validate(data)
    except ValidationError:
        return None


def _said(response: httpx.Response) -> str:
    """`: <the outcome's text>` to end a sentence with, or `.` when there is none."""
    outcome = outcome_of(response)
    text = outcome.text() if outcome else None
    return f": {text}" if text else "."


def error_for(response: httpx.Response, action: str) -> AppError:
    """Translate a refused interaction (`read`, `search`, `create`, `update`) into our error."""
    status = response.status_code
    outcome = outcome_of(response)
    code = outcome.first_code() if outcome else None
    logger.warning(
        "fhir %s refused", action, extra={"status": status, "outcome_code": code, "action": action}
    )
    said = _said(response)
    if status == 410:
        return EhrResourceDeletedError(
            f"The resource was deleted in the EHR{said}", outcome_code=code
        )
    if status == 404 and action in {"read", "update"}:
        return EhrResourceNotFoundError(f"The EHR has no such resource{said}", outcome_code=code)
    if status in {409, 412} and action == "update":
        return EhrVersionConflictError(f"The EHR record changed since it was read{said}")
    if status == 412 and action == "create":
        return EhrMultipleMatchesError(f"The EHR holds several records with this identifier{said}")
    if status in {401, 403}:
        message = f"The EHR refused our credentials (HTTP {status}){said}"
        return EhrAuthError(message, status=status, outcome_code=code)
    if 400 <= status < 500:
        message = f"The EHR refused the {action} (HTTP {status}){said}"
        return EhrRequestRejectedError(message, status=status, outcome_code=code)
    return EhrError(f"The EHR failed (HTTP {status}){said}", status=status, outcome_code=code)
