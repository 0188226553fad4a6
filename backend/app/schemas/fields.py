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
- `Omittable[X]`: a field of a partial update that may be left out but never set to
  `null` (`name: Omittable[LeadName] = None`); OpenAPI shows it optional and not nullable.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

# Largest value a BIGINT column holds: larger ids in a path are a 422, never a database error.
MAX_ID = 2**63 - 1
MIN_BIGINT = -(2**63)
MAX_OFFSET = MAX_ID

# No control characters at all (C0 and DEL): one line of plain text.
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
# Tab, newline and carriage return allowed; NUL and the other control characters refused.
MULTI_LINE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# What pydantic's strip_whitespace removes (Unicode White_Space; Rust's str::trim).
_BLANKS = r"\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@dataclass(frozen=True)
class TextRule:
    """The rule of a text field: which characters it refuses, its length, whether it is stripped.

    Used as `Annotated` metadata (build it with `single_line` or `multi_line`). Surrounding
    blanks are stripped first (when `strip`); what remains must hold no refused character and
    fit the length. The OpenAPI `pattern` says the same of the text as sent.
    """

    refused: str  # a regex character class body: the characters refused inside the text
    max_length: int
    min_length: int
    strip: bool

    @cached_property
    def pattern(self) -> str:
        """The regex of an acceptable text as sent, for OpenAPI.

        Without stripping it only names the refused characters (the length is `minLength`/
        `maxLength`). With stripping it also bounds the length of what remains between the
        surrounding blanks, since that, not the text as sent, is what is measured.
        """
        inside = f"[^{self.refused}]"
        if not self.strip:
            return f"^{inside}*$"
        blanks = f"[{_BLANKS}]*"
        visible = f"[^{self.refused}{_BLANKS}]"
        if self.max_length == 1:
            core = visible if self.min_length else f"{visible}?"
        else:
            middle = f"{inside}{{{max(self.min_length - 2, 0)},{self.max_length - 2}}}"
            core = f"{visible}(?:{middle}{visible})"
            core += "" if self.min_length >= 2 else "?"
            core = core if self.min_length else f"(?:{core})?"
        return f"^{blanks}{core}{blanks}$"

    @cached_property
    def _refused_character(self) -> re.Pattern[str]:
        return re.compile(f"[{self.refused}]")

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Strip and bound the length, then look for refused characters."""
        bounded = core_schema.str_schema(
            strict=True,
            strip_whitespace=self.strip,
            min_length=self.min_length,
            max_length=self.max_length,
        )
        return core_schema.no_info_after_validator_function(self._check_characters, bounded)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Show the rule in OpenAPI: the pattern, and the lengths where they apply as sent."""
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        if self.strip:  # the pattern bounds the stripped length; the raw length is free
            json_schema.pop("minLength", None)
            json_schema.pop("maxLength", None)
        return json_schema

    def _check_characters(self, value: str) -> str:
        if self._refused_character.search(value):
            raise PydanticCustomError(
                "string_pattern_mismatch", "String should not contain {what}", {"what": self._what}
            )
        return value

    @property
    def _what(self) -> str:
        if self.refused == SINGLE_LINE_PATTERN[3:-3]:
            return "control characters (one line of text)"
        return "control characters other than tab and line breaks"


def single_line(*, max_length: int, min_length: int = 1, strip: bool = True) -> TextRule:
    """The rule of one line of text (names, titles, codes).

    Args:
        max_length: most characters allowed (after stripping).
        min_length: fewest characters allowed (after stripping); 1 refuses blank text.
        strip: whether surrounding whitespace is removed first.

    Returns:
        Metadata for `Annotated[str, single_line(max_length=200)]`: a JSON string only,
        no control characters, bounded.
    """
    return TextRule(SINGLE_LINE_PATTERN[3:-3], max_length, min_length, strip)


def multi_line(*, max_length: int, min_length: int = 0, strip: bool = False) -> TextRule:
    """The rule of free text that may span lines (notes, message bodies).

    Args:
        max_length: most characters allowed.
        min_length: fewest characters allowed (after stripping, if `strip`).
        strip: whether surrounding whitespace is removed first.

    Returns:
        Metadata for `Annotated[str, multi_line(max_length=5000)]`: a JSON string only,
        no NUL or control characters other than tab, newline and carriage return, bounded.
    """
    return TextRule(MULTI_LINE_PATTERN[3:-3], max_length, min_length, strip)


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}.*")


def _iso_date_text(value: object) -> object:
    """Let ISO 8601 date text (or a parsed date, from Python callers) through.

    JSON bodies are validated in Python mode, where pydantic would read a number (or "123")
    as a Unix time and `true` as 1; the contract wants those refused.

    Raises:
        ValueError: `value` is not `YYYY-MM-DD` text.
    """
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("must be an ISO 8601 date (YYYY-MM-DD)")


def _iso_text(value: object) -> object:
    """Let ISO 8601 date-time text (or a parsed datetime, from Python callers) through.

    Raises:
        ValueError: `value` is not ISO 8601 date-time text.
    """
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATETIME.fullmatch(value)):
        return value
    raise ValueError("must be an ISO 8601 timestamp string")


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
IsoDate = Annotated[date, BeforeValidator(_iso_date_text), Field(description="ISO 8601 date.")]


def integer(*, ge: int, le: int) -> Any:
    """The rule of an integer field, as `Annotated[int, <this>]`.

    Strict: `true`, `"5"` and `5.0` are refused (JSON Schema would count `5.0` an integer;
    the contract does not), and bounded.

    Returns:
        Metadata for `Annotated[int, ...]`.
    """
    return Field(strict=True, ge=ge, le=le)


# Ids in bodies and filters stay below 2**53, where every JSON implementation reads them exactly.
MAX_SAFE_ID = 2**53 - 1
BigInt = Annotated[int, integer(ge=MIN_BIGINT, le=MAX_ID)]
StrictBool = Annotated[bool, Strict()]
StrictEmail = Annotated[EmailStr, Strict()]


class _NotNull:
    """Refuse an explicit `null`, and leave `null` out of the field's OpenAPI schema."""

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Wrap the field's schema with a check that refuses `None` (defaults are not checked)."""
        return core_schema.no_info_before_validator_function(_refuse_null, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Drop the `null` option that `X | None` brings."""
        json_schema = handler(schema)
        options = [o for o in json_schema.get("anyOf", []) if o != {"type": "null"}]
        if len(options) == 1:
            del json_schema["anyOf"]
            json_schema.update(options[0])
        return json_schema


def _refuse_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("not_null", "May be omitted, but not null")
    return value


ValueT = TypeVar("ValueT")
Omittable = Annotated[ValueT | None, _NotNull()]


RecordId = Annotated[int, integer(ge=1, le=MAX_SAFE_ID), Field(description="A record's id.")]
Currency = Annotated[
    str,
    StringConstraints(strict=True, pattern=r"^[A-Za-z]{3}$", to_lower=True),
    Field(description="ISO 4217 code, 3 letters; returned lower case."),
]


def minor_units(*, maximum: int = 99_999_999, minimum: int = 0) -> Any:
    """An amount of money in the currency's minor units (cents): a strict, bounded integer.

    Returns:
        Metadata for `Annotated[int, minor_units(maximum=...)]`.
    """
    return integer(ge=minimum, le=maximum)


def _http_url(value: str) -> str:
    """Check `value` is an http(s) URL; keep it as sent.

    Raises:
        ValueError: not an absolute http or https URL.
    """
    if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


HttpUrlText = Annotated[
    str,
    single_line(max_length=2048),
    AfterValidator(_http_url),
    Field(json_schema_extra={"format": "uri"}),
]


@dataclass(frozen=True)
class DecimalRule:
    """A decimal number sent as a JSON number, with at most `places` decimal places.

    Read as a `Decimal` from the number's shortest text (so 0.1 is exactly 0.1), bounded by
    `minimum` and `maximum`; OpenAPI shows the bounds and a `multipleOf` of one unit of the
    last place. Responses carry it as a string (`"12.50"`), as JSON numbers lose precision.
    """

    places: int
    minimum: Decimal
    maximum: Decimal

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Accept an int or float (never a bool or a string), then check the rule."""
        return core_schema.no_info_plain_validator_function(
            self._validate, serialization=core_schema.to_string_ser_schema()
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """A JSON number with its bounds and step."""
        return {
            "type": "number",
            "minimum": float(self.minimum),
            "maximum": float(self.maximum),
            "multipleOf": float(Decimal(1).scaleb(-self.places)),
        }

    def _validate(self, value: object) -> Decimal:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = Decimal(str(value))
        else:
            raise PydanticCustomError("decimal_type", "Input should be a number")
        if not number.is_finite() or number != round(number, self.places):
            raise PydanticCustomError(
                "decimal_places",
                "Input should have at most {places} decimal places",
                {"places": self.places},
            )
        if not self.minimum <= number <= self.maximum:
            raise PydanticCustomError(
                "decimal_range",
                "Input should be from {low} to {high}",
                {"low": str(self.minimum), "high": str(self.maximum)},
            )
        return number.quantize(Decimal(1).scaleb(-self.places))  # as the column stores it


def decimal_number(*, places: int, minimum: str, maximum: str) -> DecimalRule:
    """The rule of a decimal field, as `Annotated[Decimal, <this>]`.

    Args:
        places: most decimal places (the column's scale).
        minimum: smallest value, as text (`"0"`).
        maximum: largest value, as text (`"9999999999.99"`, within the column's precision).

    Returns:
        Metadata that validates, documents and serializes the field.
    """
    return DecimalRule(places, Decimal(minimum), Decimal(maximum))


_DECIMAL_TEXT = r"^-?[0-9]{1,30}(\.[0-9]{1,12})?$"


def _decimal_text(value: object) -> Decimal:
    """Read a decimal from its text (query parameters arrive as text).

    Raises:
        ValueError: not a plain decimal like `12.50`.
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str) and re.fullmatch(_DECIMAL_TEXT, value):
        return Decimal(value)
    raise ValueError("must be a decimal number such as 12.50")


# A decimal in a query parameter: `?budget_from=12.50`.
DecimalText = Annotated[
    Decimal,
    PlainValidator(_decimal_text),
    WithJsonSchema({"type": "string", "pattern": _DECIMAL_TEXT}),
]
