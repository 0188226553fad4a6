"""What a spec means for the code: names, columns, indexes, filters and sorts.

Every renderer (`render_*.py`) reads a `Plan` rather than the spec, so a rule (which index a
sort needs, what a field's Python type is) is decided once.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import phonenumbers

from tools.generate.spec import EntitySpec, FieldSpec

INT32 = 2**31 - 1
USERS = "users"  # the table of the built-in user entity


@dataclass(frozen=True)
class Names:
    """The names of one entity across the code."""

    entity: str  # lead
    plural: str  # leads
    cls: str  # Lead
    label: str  # lead (in messages: "Lead 4 was not found.")

    @property
    def id_param(self) -> str:
        """The path parameter of one record: `lead_id`."""
        return f"{self.entity}_id"

    @property
    def url(self) -> str:
        """The collection's path under /api/v1: `/leads`."""
        return "/" + self.plural.replace("_", "-")


def names_of(entity: str, plural: str = "") -> Names:
    """Return the names of an entity from its singular snake_case name."""
    return Names(
        entity=entity,
        plural=plural or f"{entity}s",
        cls="".join(part.capitalize() for part in entity.split("_")),
        label=entity.replace("_", " "),
    )


@dataclass(frozen=True)
class Column:
    """One stored column (a money field stores two)."""

    name: str
    field: str  # the spec field it stores
    spec: FieldSpec
    nullable: bool


@dataclass
class Plan:
    """Everything the renderers need, derived from one spec."""

    spec: EntitySpec
    names: Names
    references: dict[str, Names] = field(default_factory=dict)  # field -> referred entity
    restricted_by: list[str] = field(default_factory=list)  # entities whose rows block a delete

    @property
    def fields(self) -> dict[str, FieldSpec]:
        """The spec's fields, in order."""
        return self.spec.fields

    @property
    def api_fields(self) -> dict[str, FieldSpec]:
        """Fields the API shows (not internal)."""
        return {n: f for n, f in self.fields.items() if not f.internal}

    @property
    def input_fields(self) -> dict[str, FieldSpec]:
        """Fields a body may set."""
        return {n: f for n, f in self.fields.items() if not f.read_only}

    @property
    def columns(self) -> list[Column]:
        """The stored columns, in order."""
        columns = []
        for name, spec in self.fields.items():
            nullable = not spec.required and spec.default is None
            if spec.type == "money":
                columns.append(Column(f"{name}_amount", name, spec, nullable))
                columns.append(Column(f"{name}_currency", name, spec, nullable))
            else:
                columns.append(Column(name, name, spec, nullable))
        return columns

    @property
    def phone_fields(self) -> list[str]:
        """Fields normalised to E.164 by the crud functions."""
        return [n for n, f in self.fields.items() if f.type == "phone" and not f.read_only]

    @property
    def opt_out_flags(self) -> dict[str, str]:
        """Read-only flags `{flag: phone field}` saying whether the number replied STOP."""
        return {f.opt_out_flag: n for n, f in self.fields.items() if f.opt_out_flag}

    @property
    def sorts(self) -> list[str]:
        """The sort keys the list offers: the sortable fields, then the timestamps."""
        keys = [n for n, f in self.fields.items() if f.sortable]
        return ["created_at", "updated_at", *keys]

    @property
    def search_fields(self) -> list[str]:
        """Fields the list's `q` searches (a literal, case-insensitive substring)."""
        return [n for n, f in self.fields.items() if f.searchable]

    @property
    def filters(self) -> dict[str, FieldSpec]:
        """Fields the list filters on."""
        return {n: f for n, f in self.fields.items() if f.filter}

    @property
    def enums(self) -> dict[str, FieldSpec]:
        """Enum fields: each gets a StrEnum named after the entity and the field."""
        return {n: f for n, f in self.fields.items() if f.type == "enum"}

    def enum_class(self, field_name: str) -> str:
        """The StrEnum of an enum field: `LeadStatus`."""
        return self.names.cls + "".join(p.capitalize() for p in field_name.split("_"))

    def has(self, operation: str) -> bool:
        """Whether the API offers `operation`."""
        return operation in self.spec.operations

    def indexes(self) -> list[tuple[str, ...]]:
        """The indexes the list needs: each sort key then the id; each filter; `indexed`."""
        scoped = self.spec.owner_scoped
        found: list[tuple[str, ...]] = []
        for key in self.sorts:
            if scoped:
                found.append(("owner_id", key, "id"))
        for name, spec in self.filters.items():
            if scoped and spec.type != "reference":
                found.append(("owner_id", name))
        for key in self.sorts:
            found.append((key, "id"))
        for name, spec in self.fields.items():
            if spec.filter or spec.indexed or spec.type == "reference":
                columns = (name,) if spec.type != "money" else (f"{name}_amount",)
                if columns not in found and (name, "id") not in found:
                    found.append(columns)
        return found


def example_of(name: str, spec: FieldSpec) -> Any:
    """A plausible value of a field for OpenAPI examples and the contract tests."""
    if spec.example is not None:
        return spec.example
    if spec.type == "enum":
        return spec.default if spec.default is not None else spec.values[0]
    defaults: dict[str, Any] = {
        "short_text": name.replace("_", " ").capitalize(),
        "long_text": f"Some {name.replace('_', ' ')}.",
        "integer": int(spec.minimum) if spec.minimum is not None else 1,
        "decimal": _decimal_example(spec),
        "money": {"amount": 5000, "currency": "usd"},
        "boolean": False,
        "email": "ada@example.com",
        "phone": "+1 (415) 555-0100",
        "url": "https://example.com/page",
        "uuid": "0b6f1c3e-8a40-4d5e-9a9e-2f4c5d6e7f80",
        "date": "2026-01-05",
        "datetime": "2026-01-05T09:30:00Z",
        "reference": 1,
        "json": {"key": "value"},
    }
    return defaults[spec.type]


def _decimal_example(spec: FieldSpec) -> int | float:
    """A JSON number inside the field's bounds (a decimal is sent as a number)."""
    low = spec.minimum if spec.minimum is not None else 0
    value = Decimal(str(low)) + Decimal("1.5")
    if spec.maximum is not None and value > Decimal(str(spec.maximum)):
        value = Decimal(str(low))
    return float(value) if value % 1 else int(value)


def read_example_of(name: str, spec: FieldSpec) -> Any:
    """The example as the API returns it (phones normalised to E.164)."""
    value = example_of(name, spec)
    if spec.type == "decimal":
        return str(value)  # responses carry decimals as strings
    if spec.type == "phone" and isinstance(value, str):
        number = phonenumbers.parse(value, "US")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return value
