"""Field types for every input: strict, and bounded by what the database can hold.

Request bodies, query parameters and form fields use these instead of a bare `str`, `int`
or `datetime`, so a value the database would refuse (a NUL byte, an integer beyond 64 bits,
a date past year 9999) is a 422 naming the field, never a 500:

- Text: `Annotated[str, single_line(max_length=200)]` for names, titles, codes;
  `Annotated[str, multi_line(max_length=5000)]` for notes and message bodies. Both refuse
  NUL (PostgreSQL text cannot hold it) and the other control characters, except tab,
  newline and carriage return in multi-line text. The rule shows in OpenAPI as a `pattern`.
- `UtcDateTime`: ISO 8601 text with an offset; stored and returned in UTC. Numbers,
  booleans, times without an offset and times that leave years 1-9999 in UTC are refused.
- `IsoDate`: ISO 8601 date text (`2026-01-05`); numbers and booleans are refused.
- `BigInt`, `MAX_ID`, `MAX_OFFSET`: integers a BIGINT column holds.
- `StrictBool`, `StrictEmail`: `true`/`false` only; a valid address as a JSON string.
"""

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    EmailStr,
    Field,
    Strict,
    StringConstraints,
)

# Largest value a BIGINT column holds: larger ids in a path are a 422, never a database error.
MAX_ID = 2**63 - 1
MIN_BIGINT = -(2**63)
MAX_OFFSET = MAX_ID

# No control characters at all (C0 and DEL): one line of plain text.
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
# Tab, newline and carriage return allowed; NUL and the other control characters refused.
MULTI_LINE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def single_line(*, max_length: int, min_length: int = 1, strip: bool = True) -> StringConstraints:
    """Constraints of one line of text (names, titles, codes).

    Args:
        max_length: most characters allowed (after stripping).
        min_length: fewest characters allowed (after stripping); 1 refuses blank text.
        strip: whether surrounding whitespace is removed first.

    Returns:
        The pydantic constraints: strict (a JSON string only), bounded, no control characters.
    """
    return StringConstraints(
        strict=True,
        strip_whitespace=strip,
        min_length=min_length,
        max_length=max_length,
        pattern=SINGLE_LINE_PATTERN,
    )


def multi_line(*, max_length: int, min_length: int = 0, strip: bool = False) -> StringConstraints:
    """Constraints of free text that may span lines (notes, message bodies).

    Args:
        max_length: most characters allowed.
        min_length: fewest characters allowed (after stripping, if `strip`).
        strip: whether surrounding whitespace is removed first.

    Returns:
        The pydantic constraints: strict, bounded, no NUL or control characters other than
        tab, newline and carriage return.
    """
    return StringConstraints(
        strict=True,
        strip_whitespace=strip,
        min_length=min_length,
        max_length=max_length,
        pattern=MULTI_LINE_PATTERN,
    )


def _iso_text(value: object) -> object:
    """Let ISO 8601 text (or an already parsed value, from Python callers) through.

    JSON bodies are validated in Python mode, where pydantic would read a number as a Unix
    time and `true` as 1; the contract wants those refused.

    Raises:
        ValueError: `value` is not a string.
    """
    if isinstance(value, str | date):
        return value
    raise ValueError("must be an ISO 8601 string")


def _in_utc(value: datetime) -> datetime:
    """Return `value` in UTC.

    Raises:
        ValueError: the time leaves years 1-9999 once converted to UTC.
    """
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range once converted to UTC") from exc


UtcDateTime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(_in_utc),
    Field(description="ISO 8601 with an offset; returned in UTC."),
]
IsoDate = Annotated[date, BeforeValidator(_iso_text), Field(description="ISO 8601 date.")]
BigInt = Annotated[int, Strict(), Field(ge=MIN_BIGINT, le=MAX_ID)]
StrictBool = Annotated[bool, Strict()]
StrictEmail = Annotated[EmailStr, Strict()]
