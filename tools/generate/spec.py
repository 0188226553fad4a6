"""The entity spec: one small YAML file per entity, read and checked here.

A spec names an entity's fields and what the API does with them (see
`backend/app/docs/specs/README.md` for the format, and `lead.yaml` for the worked example).
`load_spec` reads one into an `EntitySpec`, refusing anything unknown or inconsistent with a
message that names the key, so a typo never turns into silently different code.
"""

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FieldType = Literal[
    "short_text",
    "long_text",
    "integer",
    "decimal",
    "money",
    "boolean",
    "email",
    "phone",
    "url",
    "uuid",
    "date",
    "datetime",
    "enum",
    "reference",
    "json",
]
Operator = Literal["eq", "in", "range", "contains"]
Operation = Literal["create", "read", "update", "delete", "list"]
OnDelete = Literal["cascade", "restrict", "set_null"]
ALL_OPERATIONS: tuple[Operation, ...] = ("create", "read", "update", "delete", "list")

NAME = r"^[a-z][a-z0-9_]*$"
FILTERS_BY_TYPE: dict[str, set[str]] = {
    "short_text": {"eq", "in", "contains"},
    "long_text": {"contains"},
    "integer": {"eq", "in", "range"},
    "decimal": {"eq", "range"},
    "boolean": {"eq"},
    "email": {"eq", "contains"},
    "phone": {"eq"},
    "url": {"eq"},
    "uuid": {"eq", "in"},
    "date": {"eq", "range"},
    "datetime": {"range"},
    "enum": {"eq", "in"},
    "reference": {"eq", "in"},
}
SORTABLE_TYPES = {"short_text", "integer", "decimal", "email", "date", "datetime", "enum"}
SEARCHABLE_TYPES = {"short_text", "long_text", "email", "phone"}


class SpecError(ValueError):
    """A spec that cannot be generated; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """One field of an entity and its modifiers."""

    type: FieldType
    description: str = ""
    required: bool = False
    default: Any = None
    example: Any = None
    # short_text / long_text
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    pattern: str | None = None
    # integer / decimal / money
    minimum: int | float | None = None
    maximum: int | float | None = None
    precision: int = Field(default=12, ge=1, le=38)
    scale: int = Field(default=2, ge=0, le=12)
    # enum
    values: list[str] = Field(default_factory=list)
    enum_description: str = ""
    # reference
    to: str | None = None
    on_delete: OnDelete = "restrict"
    # phone: expose whether the number replied STOP as this read-only boolean
    opt_out_flag: str | None = Field(default=None, pattern=NAME)
    # modifiers
    unique: Literal[False, True, "per_owner"] = False
    indexed: bool = False
    filter: list[Operator] = Field(default_factory=list)
    sortable: bool = False
    searchable: bool = False
    read_only: bool = False  # set by the server: in the read shape, never in a body
    internal: bool = False  # set by the server and never shown by the API

    @model_validator(mode="after")
    def _check(self) -> "FieldSpec":
        allowed = FILTERS_BY_TYPE.get(self.type, set())
        wrong = [op for op in self.filter if op not in allowed]
        if wrong:
            raise ValueError(f"filter {wrong} is not offered for {self.type} (use {allowed})")
        if self.sortable and self.type not in SORTABLE_TYPES:
            raise ValueError(f"a {self.type} field cannot be sortable")
        if self.searchable and self.type not in SEARCHABLE_TYPES:
            raise ValueError(f"a {self.type} field cannot be searchable")
        if self.type == "enum" and not self.values:
            raise ValueError("an enum needs values")
        if self.type == "reference" and not self.to:
            raise ValueError("a reference needs `to` (the entity it refers to)")
        if self.on_delete == "set_null" and self.required:
            raise ValueError("on_delete: set_null needs an optional field")
        if self.type == "short_text" and not self.max_length:
            raise ValueError("a short_text needs max_length")
        if self.opt_out_flag and self.type != "phone":
            raise ValueError("opt_out_flag is for phone fields")
        if self.internal and not self.read_only:
            raise ValueError("an internal field is read_only too")
        return self


class PaymentsSpec(_Strict):
    """What deleting a record with payments does: refuse, with this error (core/errors.py)."""

    error: str = Field(default="HasPaymentsError", pattern=r"^[A-Z][A-Za-z]*Error$")


class EntitySpec(_Strict):
    """An entity: its names, fields and the API over them."""

    entity: str = Field(pattern=NAME, description="Singular, snake_case: `lead`.")
    plural: str = Field(default="", pattern=r"^$|" + NAME)
    description: str = Field(min_length=1, description="What one record is, as a noun phrase.")
    owner_scoped: bool = True
    operations: list[Operation] = Field(default_factory=lambda: list(ALL_OPERATIONS))
    page_size: int = Field(default=50, ge=1, le=100)
    default_sort: str = "-created_at"
    fields: dict[str, FieldSpec]
    update_example: dict[str, Any] | None = None
    texts: bool = False  # texts about a record go with it when it is deleted
    payments: PaymentsSpec | None = None

    @property
    def table(self) -> str:
        """The table name: the plural."""
        return self.plural or f"{self.entity}s"

    @model_validator(mode="after")
    def _check(self) -> "EntitySpec":
        for name in self.fields:
            if not _is_name(name):
                raise ValueError(f"field {name!r} is not snake_case")
            if name in {"id", "owner_id", "created_at", "updated_at"}:
                raise ValueError(f"field {name!r} is set by the server; leave it out")
        sorts = {name for name, field in self.fields.items() if field.sortable}
        key = self.default_sort.removeprefix("-")
        if key not in {"created_at", "updated_at", *sorts}:
            raise ValueError(f"default_sort {self.default_sort!r} is not a sortable field")
        if self.payments and not self.owner_scoped:
            raise ValueError("payments need an owner-scoped entity")
        return self


def _is_name(text: str) -> bool:
    return text.isidentifier() and text == text.lower() and not text.startswith("_")


def load_spec(path: Path) -> EntitySpec:
    """Read and check the spec at `path`.

    Raises:
        SpecError: the file is not valid YAML or breaks a rule of the format.
    """
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read it: {exc}") from exc
    try:
        return EntitySpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'spec'}: {error['msg']}"
            for error in exc.errors()
        )
        raise SpecError(f"{path}: {problems}") from exc
