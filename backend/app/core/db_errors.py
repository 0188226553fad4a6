"""Database integrity errors, turned into ours in one place.

A check in Python ("does this lead exist?", "is this email free?") can be overtaken by a
concurrent request before the write reaches the database; the database's constraint then
refuses the write. `translate_integrity_error` turns that refusal into the same error the
check would have given, so a race answers 404 or 409, never 500. The unit of work
(`core/database.py`) calls it for every request, so every entity gets it without a line.

What a violation means:

- unique (or primary key): 409 `conflict`, "A <entity> with this <columns> already exists.";
- foreign key, on INSERT/UPDATE of the referring row: 404 `not_found`, "The <entity> it
  refers to was not found.";
- foreign key, on DELETE of the referred row (`ON DELETE RESTRICT`): 409 `conflict`,
  "This <entity> cannot be deleted: a <other entity> refers to it.";
- NOT NULL or CHECK: 422 `validation_error` (the schema should have refused it first).

A model names a more specific error on the constraint itself, through `info`:

    UniqueConstraint("email", name="uq_users_email", info={"error": EmailTakenError})
    ForeignKey("leads.id", ondelete="RESTRICT", info={"referenced": LeadHasPaymentsError})

(`"missing"` names the error for a referred row that does not exist.) PostgreSQL reports
the constraint's name; SQLite names the table and columns of a unique or NOT NULL failure but
not the foreign key, which is then found from the statement's table when only one fits.
"""

import logging
import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ForeignKeyConstraint, MetaData, Table, UniqueConstraint
from sqlalchemy.exc import IntegrityError

from backend.app.core.errors import AppError, ConflictError, InvalidFieldError, NotFoundError

logger = logging.getLogger("app.db")

Kind = Literal["unique", "foreign_key", "not_null", "check", "other"]

_PG_KINDS: dict[str, Kind] = {
    "23505": "unique",
    "23503": "foreign_key",
    "23502": "not_null",
    "23514": "check",
}
# SQLite's messages (its error names vary: ON DELETE RESTRICT fails as a "trigger").
_SQLITE_KINDS: dict[str, Kind] = {
    "UNIQUE constraint failed": "unique",
    "FOREIGN KEY constraint failed": "foreign_key",
    "NOT NULL constraint failed": "not_null",
    "CHECK constraint failed": "check",
}
_STATEMENT_TABLE = re.compile(
    r'^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE
)
_SQLITE_COLUMNS = re.compile(r"constraint failed: (.+)$")


@dataclass(frozen=True)
class Violation:
    """What the database refused: the kind, and whatever it told us about where."""

    kind: Kind
    statement_verb: str  # INSERT, UPDATE or DELETE
    statement_table: str | None
    constraint_name: str | None = None
    table_name: str | None = None
    columns: tuple[str, ...] = ()


def translate_integrity_error(exc: IntegrityError, metadata: MetaData) -> AppError:
    """Return our error for a constraint violation the database raised.

    Args:
        exc: the error SQLAlchemy raised at flush or commit.
        metadata: the models' metadata, where constraints and their `info` are declared.

    Returns:
        The error the matching pre-check would have raised (see the module docstring).
    """
    violation = read_violation(exc)
    logger.info(
        "database refused a write",
        extra={"constraint": violation.constraint_name, "kind": violation.kind},
    )
    if violation.kind == "unique":
        return _unique_error(violation, metadata)
    if violation.kind == "foreign_key":
        return _foreign_key_error(violation, metadata)
    if violation.kind == "not_null" and violation.columns:
        return InvalidFieldError(["body", violation.columns[-1]], "may not be null")
    return InvalidFieldError(["body"], "breaks a rule of the database")


def read_violation(exc: IntegrityError) -> Violation:
    """Read the kind and place of a violation from PostgreSQL's or SQLite's error."""
    match = _STATEMENT_TABLE.match(exc.statement or "")
    verb = match.group(1).split()[0].upper() if match else ""
    table = match.group(2) if match else None
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:  # asyncpg: details live on the driver's own exception
        detail = orig.__cause__ if orig is not None else None
        column = getattr(detail, "column_name", None)
        return Violation(
            kind=_PG_KINDS.get(str(sqlstate), "other"),
            statement_verb=verb,
            statement_table=table,
            constraint_name=getattr(detail, "constraint_name", None),
            table_name=getattr(detail, "table_name", None),
            columns=(column,) if column else (),
        )
    message = str(orig)
    kind = _sqlite_kind(message)
    found = _SQLITE_COLUMNS.search(message)
    names = [part.strip() for part in found.group(1).split(",")] if found else []
    if kind == "check":
        return Violation(kind, verb, table, constraint_name=names[0] if names else None)
    qualified = [name.split(".", 1) for name in names if "." in name]
    return Violation(
        kind=kind,
        statement_verb=verb,
        statement_table=table,
        table_name=qualified[0][0] if qualified else None,
        columns=tuple(column for _, column in qualified),
    )


def _sqlite_kind(message: str) -> Kind:
    for prefix, kind in _SQLITE_KINDS.items():
        if message.startswith(prefix):
            return kind
    return "other"


def _unique_error(violation: Violation, metadata: MetaData) -> AppError:
    constraint = _find_unique(violation, metadata)
    error = constraint.info.get("error") if constraint is not None else None
    if isinstance(error, type) and issubclass(error, AppError):
        return error()
    table = violation.table_name or violation.statement_table or "record"
    columns = violation.columns or (
        tuple(column.name for column in constraint.columns) if constraint is not None else ()
    )
    what = f" with this {', '.join(columns)}" if columns else ""
    return ConflictError(f"A {entity_label(table)}{what} already exists.")


def _find_unique(violation: Violation, metadata: MetaData) -> UniqueConstraint | None:
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if not isinstance(constraint, UniqueConstraint):
                continue
            if violation.constraint_name and str(constraint.name) == violation.constraint_name:
                return constraint
            names = tuple(column.name for column in constraint.columns)
            if table.name == violation.table_name and names == violation.columns:
                return constraint
    return None


def _foreign_key_error(violation: Violation, metadata: MetaData) -> AppError:
    constraint = _find_foreign_key(violation, metadata)
    referenced = violation.statement_verb == "DELETE"
    key = "referenced" if referenced else "missing"
    error = _info_of(constraint).get(key) if constraint is not None else None
    if isinstance(error, type) and issubclass(error, AppError):
        return error()
    if constraint is None:
        if referenced:
            return ConflictError("This record cannot be deleted: another record refers to it.")
        return NotFoundError("A record it refers to was not found.")
    parent = entity_label(constraint.referred_table.name)
    child = entity_label(_table_of(constraint).name)
    if referenced:
        return ConflictError(f"This {parent} cannot be deleted: a {child} refers to it.")
    return NotFoundError(f"The {parent} it refers to was not found.")


def _find_foreign_key(violation: Violation, metadata: MetaData) -> ForeignKeyConstraint | None:
    """Find the violated foreign key by name, or the only one the statement can have hit."""
    keys = [
        constraint
        for table in metadata.tables.values()
        for constraint in table.constraints
        if isinstance(constraint, ForeignKeyConstraint)
    ]
    if violation.constraint_name:
        named = [key for key in keys if str(key.name) == violation.constraint_name]
        return named[0] if named else None
    if violation.statement_verb == "DELETE":
        candidates = [
            key
            for key in keys
            if key.referred_table.name == violation.statement_table
            and (key.ondelete or "NO ACTION").upper() in {"RESTRICT", "NO ACTION"}
        ]
    else:
        candidates = [key for key in keys if _table_of(key).name == violation.statement_table]
    return candidates[0] if len(candidates) == 1 else None


def _info_of(constraint: ForeignKeyConstraint) -> dict[str, object]:
    """The `info` of a foreign key: the constraint's, or that of its `ForeignKey` element."""
    info: dict[str, object] = {}
    for element in constraint.elements:
        info.update(element.info)
    info.update(constraint.info)
    return info


def _table_of(constraint: ForeignKeyConstraint) -> Table:
    table = constraint.table
    assert isinstance(table, Table)
    return table


def entity_label(table_name: str) -> str:
    """Name one row of `table_name` in a message: `leads` -> "lead", `sms_usage` -> "sms usage"."""
    name = table_name
    if name.endswith("ies"):
        name = name[:-3] + "y"
    elif name.endswith(("sses", "xes")):
        name = name[:-2]
    elif name.endswith("s") and not name.endswith("ss"):
        name = name[:-1]
    return name.replace("_", " ")
