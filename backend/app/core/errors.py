"""Our error types, the contract's error body schema, and the one status map.

Code below the routers raises `AppError` subclasses that know nothing of HTTP;
`STATUS_BY_ERROR` gives each its status. `error_handlers.py` turns them, FastAPI's
validation errors and Starlette's HTTP errors into `{"code", "message", "details",
"request_id"}`; `RequestContextMiddleware` does the same for unhandled exceptions.

To add an error: subclass the closest generic error below with a specific `code`, list it in
the router's `responses=error_responses(...)`, and raise it.
"""

from collections import defaultdict
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

GENERIC_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "integration_error",
    503: "service_unavailable",
}

GENERIC_MESSAGES: dict[int, str] = {
    400: "The request is malformed.",
    401: "Authentication is required.",
    403: "You are not allowed to do this.",
    404: "The resource was not found.",
    405: "This method is not allowed on this resource.",
    409: "The request conflicts with the current state of the resource.",
    413: "The request body is too large.",
    415: "The request body must be JSON (Content-Type: application/json).",
    422: "The request is invalid.",
    429: "Too many requests; retry later.",
    500: "An internal error occurred.",
    502: "An external service failed; retry later.",
    503: "The service is unavailable; retry later.",
}


class ErrorDetail(BaseModel):
    """One validation problem: where it is, what is wrong, and its machine type."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "not_found",
                    "message": "Lead 42 was not found.",
                    "details": None,
                    "request_id": "5f0c2a4e9b3d4c1a8e7f6a5b4c3d2e1f",
                }
            ]
        }
    )

    code: str = Field(description="Machine-readable, stable, lower snake_case.")
    message: str = Field(description="One human sentence.")
    details: list[ErrorDetail] | None = Field(
        default=None, description="For `validation_error`: the problems, else null."
    )
    request_id: str = Field(description="Equals the response's X-Request-ID header.")


class AppError(Exception):
    """Base of every error we raise on purpose. Subclasses set `code` and a message."""

    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "An internal error occurred."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        self.details: list[dict[str, Any]] | None = None
        self.retry_after: float | None = None  # seconds; sent as the Retry-After header
        super().__init__(self.message)


class BadRequestError(AppError):
    """The request cannot be processed as sent."""

    code = "bad_request"
    default_message = GENERIC_MESSAGES[400]


class UnauthorizedError(AppError):
    """Missing, invalid or expired credentials."""

    code = "unauthorized"
    default_message = "Could not validate credentials."


class InvalidCredentialsError(UnauthorizedError):
    """Wrong email or password (one message for both, so emails cannot be probed)."""

    code = "invalid_credentials"
    default_message = "Incorrect email or password."


class ForbiddenError(AppError):
    """Authenticated, but not allowed."""

    code = "forbidden"
    default_message = GENERIC_MESSAGES[403]


class RegistrationClosedError(ForbiddenError):
    """Self-service registration is turned off by `REGISTRATION_OPEN=false`."""

    code = "registration_closed"
    default_message = "Registration is closed; ask an administrator for an account."


class NotFoundError(AppError):
    """The resource does not exist, or belongs to someone else."""

    code = "not_found"
    default_message = GENERIC_MESSAGES[404]


class ConflictError(AppError):
    """The request conflicts with the current state."""

    code = "conflict"
    default_message = GENERIC_MESSAGES[409]


class EmailTakenError(ConflictError):
    """A user with this email (case-insensitive) already exists."""

    code = "email_taken"
    default_message = "A user with this email already exists."


class SelfModificationError(ConflictError):
    """An admin tried to demote or deactivate their own account."""

    code = "cannot_modify_self"
    default_message = "You cannot remove your own admin role or deactivate yourself."


class InvalidFieldError(AppError):
    """A field passed the schema but breaks a domain rule (e.g. not a real phone number)."""

    code = "validation_error"
    default_message = GENERIC_MESSAGES[422]

    def __init__(self, loc: list[str | int], msg: str, *, error_type: str = "value_error") -> None:
        where = ".".join(str(part) for part in loc)
        super().__init__(f"The request is invalid: check {where}.")
        self.details = [{"loc": loc, "msg": msg, "type": error_type}]


class RateLimitedError(AppError):
    """Too many requests; `retry_after` says when to try again, in seconds."""

    code = "rate_limited"
    default_message = GENERIC_MESSAGES[429]

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class IntegrationError(AppError):
    """An external service failed or answered something we cannot use."""

    code = "integration_error"
    default_message = GENERIC_MESSAGES[502]


class ServiceUnavailableError(AppError):
    """A dependency (database, circuit-broken provider) is unavailable right now."""

    code = "service_unavailable"
    default_message = GENERIC_MESSAGES[503]


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database is down, unreachable, overloaded or too slow to answer.

    The request's writes were rolled back, unless the COMMIT itself went unanswered (then
    they may be stored). Code never raises it: the handler in `error_handlers.py` answers
    it for every database error that `database.is_database_unavailable` recognises.
    """

    code = "database_unavailable"
    default_message = "The database is unavailable; retry later."

    def __init__(self, message: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class CircuitOpenError(ServiceUnavailableError):
    """A provider failed too often in a row; calls to it are paused (`core/circuit.py`)."""

    code = "integration_unavailable"
    default_message = "An external service is failing; calls to it are paused. Retry later."

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


# --- Any provider (the errors an integration written by `make integration` raises) ------


class ProviderRejectedError(IntegrationError):
    """The provider refused the request for good (a 4xx other than 429): do not retry it."""

    code = "provider_rejected"
    default_message = "The provider refused the request."

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderUnavailableError(ServiceUnavailableError):
    """The provider is unreachable, rate limiting us or down (connect error, 429, 502-504).

    `status` is its HTTP status (None when the connection failed); `retry_after`, in
    seconds, its `Retry-After` when it sent one. Safe to try again later.
    """

    code = "provider_unavailable"
    default_message = "The provider is unavailable; retry later."

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ProviderNoAnswerError(IntegrationError):
    """No usable answer (a timeout, a dropped connection, a 500): it may have been applied.

    Try again only with the same idempotency key, so the provider can recognise a repeat.
    """

    code = "provider_no_answer"
    default_message = "The provider did not answer; the request may have been applied."

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# --- SMS (messages API, Twilio webhooks, Twilio client) ----------------------------------


# example:lead start
class LeadHasNoPhoneError(ConflictError):
    """A text was queued for a lead without a phone number."""

    code = "lead_has_no_phone"
    default_message = "This lead has no phone number to text."


# example:lead end


class RecipientOptedOutError(ConflictError):
    """A text was queued for a number that replied STOP."""

    code = "recipient_opted_out"
    default_message = "This number opted out of text messages (replied STOP)."


# example:lead start
class LeadOptedOutError(RecipientOptedOutError):
    """A text was queued for a lead who replied STOP."""

    code = "lead_opted_out"
    default_message = "This lead opted out of text messages (replied STOP)."


# example:lead end


class MessageNotCancelableError(ConflictError):
    """Only a `scheduled` message can be canceled."""

    code = "message_not_cancelable"
    default_message = "Only a scheduled message can be canceled."


class SmsQuotaExceededError(RateLimitedError):
    """The user queued SMS_DAILY_LIMIT texts in the last 24 hours."""

    code = "sms_quota_exceeded"
    default_message = "You reached your limit of text messages for the last 24 hours."


class InvalidWebhookSignatureError(ForbiddenError):
    """A webhook came without a valid provider signature."""

    code = "invalid_signature"
    default_message = "The webhook signature is missing or invalid."


class SmsProviderError(IntegrationError):
    """The SMS provider refused a request; `provider_code` is its error code, if any."""

    code = "sms_provider_error"
    default_message = "The SMS provider refused the request."

    def __init__(
        self,
        message: str | None = None,
        *,
        provider_code: int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.provider_code = provider_code
        self.status = status


class SmsRecipientOptedOutError(SmsProviderError):
    """The provider refused a text because the recipient opted out (Twilio 21610)."""

    code = "sms_recipient_opted_out"
    default_message = "The recipient opted out of text messages."


class SmsProviderUnavailableError(SmsProviderError):
    """The request surely was not accepted (429, connection failed): safe to try again."""

    code = "sms_provider_unavailable"
    default_message = "The SMS provider is unavailable; retry later."

    def __init__(
        self,
        message: str | None = None,
        *,
        provider_code: int | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider_code=provider_code, status=status)
        self.retry_after = retry_after


class SmsOutcomeUnknownError(SmsProviderError):
    """The provider may have accepted the text (5xx, read timeout): look it up, never resend."""

    code = "sms_outcome_unknown"
    default_message = "The SMS provider did not confirm the text; it may have been sent."


# --- Billing (payments API, Stripe webhook, Stripe client) and idempotent requests -------


class HasPaymentsError(ConflictError):
    """A record with payments cannot be deleted: they are its billing record."""

    code = "has_payments"
    default_message = "This record has payments and cannot be deleted."


# example:lead start
class LeadHasPaymentsError(HasPaymentsError):
    """A lead with payments cannot be deleted: they are its billing record."""

    code = "lead_has_payments"
    default_message = "This lead has payments and cannot be deleted."


# example:lead end


class IdempotencyKeyReusedError(ConflictError):
    """An Idempotency-Key came again with another method, path or body."""

    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was already used for a different request."


class IdempotencyKeyInUseError(ConflictError):
    """An Idempotency-Key came again while its first request is still running."""

    code = "idempotency_key_in_use"
    default_message = "A request with this Idempotency-Key is still running; retry later."


class InvalidStripeSignatureError(BadRequestError):
    """A Stripe webhook without a valid Stripe-Signature within the tolerance window."""

    code = "invalid_signature"
    default_message = "The Stripe-Signature header is missing, invalid or too old."


class InvalidWebhookPayloadError(BadRequestError):
    """A correctly signed webhook whose body is not an event we can read or store."""

    code = "invalid_payload"
    default_message = "The webhook body is not a valid event."


class PaymentProviderError(IntegrationError):
    """The payment provider is down, timed out or failed; nothing was stored. Retry later."""

    default_message = "The payment provider failed or did not answer; retry later."


class PaymentRejectedError(InvalidFieldError):
    """The payment provider refused the amount or currency (e.g. below its minimum charge)."""

    code = "payment_rejected"
    default_message = "The payment provider refused this amount or currency."

    def __init__(self, field: str | None, provider_code: str | None) -> None:
        loc: list[str | int] = ["body", field] if field else ["body"]
        super().__init__(loc, f"Refused by the payment provider ({provider_code or 'invalid'}).")
        self.message = self.default_message


# --- EHR (FHIR client, integrations/fhir) ------------------------------------------------


class EhrError(IntegrationError):
    """The EHR failed or answered something we cannot use.

    `status` is the EHR's HTTP status (None if it never answered); `outcome_code` is the
    first `OperationOutcome.issue.code` it sent, if any. The message carries the outcome's
    own text, never the raw body.
    """

    code = "ehr_error"
    default_message = "The EHR failed or answered something we cannot use; retry later."

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        outcome_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.outcome_code = outcome_code


class EhrNoAnswerError(EhrError):
    """The EHR timed out or dropped the connection: the request may have been applied."""

    code = "ehr_no_answer"
    default_message = "The EHR did not answer; a change it was sent may have been applied."


class EhrRequestRejectedError(EhrError):
    """The EHR refused the resource or the request as invalid (400, 422, ...)."""

    code = "ehr_rejected"
    default_message = "The EHR refused the request."


class EhrAuthError(EhrError):
    """The EHR or its token endpoint refused our credentials or scopes (401, 403)."""

    code = "ehr_auth_failed"
    default_message = "The EHR refused our credentials; check the FHIR_* settings."


class EhrResourceNotFoundError(NotFoundError):
    """The EHR has no resource with this id (404)."""

    code = "ehr_resource_not_found"
    default_message = "The EHR has no such resource."

    def __init__(self, message: str | None = None, *, outcome_code: str | None = None) -> None:
        super().__init__(message)
        self.outcome_code = outcome_code


class EhrResourceDeletedError(EhrResourceNotFoundError):
    """The resource existed in the EHR but was deleted (410 Gone)."""

    code = "ehr_resource_deleted"
    default_message = "The resource was deleted in the EHR."


class EhrVersionConflictError(ConflictError):
    """Someone changed the resource since we read it (If-Match failed): nothing was written."""

    code = "ehr_version_conflict"
    default_message = "The EHR record changed since it was read; read it again and retry."


class EhrMultipleMatchesError(ConflictError):
    """A conditional create matched more than one resource: the EHR holds duplicates."""

    code = "ehr_multiple_matches"
    default_message = "The EHR holds more than one record with this identifier."


class EhrUnavailableError(ServiceUnavailableError):
    """The EHR is down, unreachable or rate limiting us (connect error, 429, 502-504).

    `status` is the EHR's HTTP status (None when the connection failed); `retry_after`, in
    seconds, is its `Retry-After` when it sent one.
    """

    code = "ehr_unavailable"
    default_message = "The EHR is unavailable; retry later."

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class EhrNotConfiguredError(ServiceUnavailableError):
    """The EHR integration is off (`EHR_PROVIDER=none`)."""

    code = "ehr_not_configured"
    default_message = "The EHR integration is not configured on this server (EHR_PROVIDER=none)."


# example:lead start
class LeadNotWonError(ConflictError):
    """Only a `won` lead becomes a patient in the EHR."""

    code = "lead_not_won"
    default_message = "Only a won lead can become a patient in the EHR."


class EhrPatientNotLinkedError(NotFoundError):
    """The lead has not been converted to a patient in the EHR yet."""

    code = "ehr_patient_not_linked"
    default_message = "This lead is not linked to a patient in the EHR yet."


# example:lead end


STATUS_BY_ERROR: dict[type[AppError], int] = {
    BadRequestError: 400,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidFieldError: 422,
    RateLimitedError: 429,
    IntegrationError: 502,
    ServiceUnavailableError: 503,
    AppError: 500,
}


def status_for(error_type: type[AppError]) -> int:
    """Return the HTTP status of an error type: that of its nearest mapped ancestor."""
    for cls in error_type.__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_responses(*errors: type[AppError] | int) -> dict[int | str, dict[str, Any]]:
    """Describe the errors an operation can return, for its `responses=` in OpenAPI.

    Args:
        errors: error types the operation raises, or bare status codes for generic errors.

    Returns:
        A `responses` mapping: one entry per status, listing every code it can carry, with
        an example body of the first one.
    """
    codes: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for error in errors:
        if isinstance(error, int):
            status, code, message = error, GENERIC_CODES[error], GENERIC_MESSAGES[error]
        else:
            status, code, message = status_for(error), error.code, error.default_message
        if (code, message) not in codes[status]:
            codes[status].append((code, message))
    return {
        status: {
            "model": ErrorResponse,
            "description": "  \n".join(f"`{code}`: {message}" for code, message in pairs),
            "content": {"application/json": {"example": _example_body(*pairs[0])}},
        }
        for status, pairs in sorted(codes.items())
    }


def _example_body(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": None, "request_id": "5f0c2a4e9b3d"}
