"""Phone number normalisation to E.164 with the `phonenumbers` library."""

import phonenumbers

from backend.app.core.errors import InvalidFieldError


class InvalidPhoneNumberError(ValueError):
    """The text is not a valid phone number."""


def normalize_phone(raw: str, *, default_region: str) -> str:
    """Return `raw` in E.164 form (`+14155550100`).

    Args:
        raw: a number as a person types it, e.g. `+1 (415) 555-0100` or `415-555-0100`.
        default_region: ISO 3166 region used when `raw` has no country code.

    Raises:
        InvalidPhoneNumberError: `raw` is not a valid number.
    """
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumberError("is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumberError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalized_phone(raw: str | None, *, region: str, field: str) -> str | None:
    """Return a request field's phone number in E.164, or None when it was left empty.

    Args:
        raw: the field's value as sent.
        region: ISO 3166 region for numbers without a country code (DEFAULT_PHONE_REGION).
        field: the body field's name, for the 422's `loc`.

    Raises:
        InvalidFieldError: `raw` is not a valid number (422 naming `body.<field>`).
    """
    if raw is None:
        return None
    try:
        return normalize_phone(raw, default_region=region)
    except InvalidPhoneNumberError as exc:
        raise InvalidFieldError(["body", field], f"Value error, {exc}") from exc
