"""The audit trail's writer: SQLAlchemy session hooks, so no handler or entity writes a line.

Sessions made by `core.database.create_session_factory` are `AuditedSession`s. In each:

- After every flush, each created, updated or deleted object of an audited model (every
  model unless it sets `__audited__ = False`) becomes one row: `create` with the values it
  was stored with, `update` with the fields that changed (`{"old": ..., "new": ...}`),
  `delete` with the values it had.
- A bulk UPDATE or DELETE run through the session (`session.execute(update(Message)...)`,
  ORM or Core) on an audited table is recorded the same way, one row per row it changed:
  the rows it matches are read first (locked, on PostgreSQL) and again after it ran when
  the new values are not plain constants. A statement that sets only columns marked
  `info={"audit": False}` (bookkeeping such as the outbox lease) costs nothing.
- Security events (`record_event`) join the same rows.
- The rows are kept on the session and inserted in one statement just before COMMIT, so
  they commit with the change or not at all: a rollback (or a rolled-back savepoint)
  drops them.

What a row does not see: statements run on a `Connection` rather than the session, raw
`text()` SQL, rows a database `ON DELETE CASCADE` removes (the parent's `delete` row stands
for them), and INSERTs issued as Core statements: create records with `session.add`. On
SQLite, which takes its write lock at the UPDATE itself, a bulk statement's rows are read
just before it, so a writer that slips in between would make an `old` value stale.

Values: primary keys and `created_at`/`updated_at` are left out (the row has `entity_id`
and `occurred_at`); columns whose name contains a secret word (`password`, `hash`,
`token`, `secret`...) show `"[redacted]"` instead of a value; text is cut to
`MAX_TEXT_LENGTH` characters.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import Enum
from functools import cache
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Delete,
    Table,
    Update,
    event,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstanceState, Mapper, ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList, Null
from sqlalchemy.sql.visitors import replacement_traverse

from backend.app.core.audit_context import current_audit_context
from backend.app.models.audit_event import AuditAction, AuditEvent
from backend.app.models.base import Base, utcnow

REDACTED = "[redacted]"
MAX_TEXT_LENGTH = 256
# A column is redacted when one of the words of its name (split on `_`) is one of these.
SECRET_WORDS = frozenset(
    {"password", "passwd", "secret", "token", "hash", "hashed", "salt", "credential", "apikey"}
)
SKIPPED_COLUMNS = frozenset({"created_at", "updated_at"})
# session.info key: the actor of everything done in sessions of a factory (`worker`).
SESSION_ACTOR = "audit_actor"
_ROWS = "audit_rows"
_SAVEPOINTS = "audit_savepoints"

Changes = dict[str, dict[str, Any]]
# Audited values of rows, by primary key: {entity_id: {column: value}}.
Snapshot = dict[Any, dict[str, Any]]


@dataclass(frozen=True)
class _Field:
    key: str  # the mapped attribute
    column: str  # the table column
    redact: bool


class _Plan:
    """What the trail records of one audited model."""

    def __init__(
        self, entity_type: str, table: Table, primary_key: list[_Field], fields: list[_Field]
    ) -> None:
        self.entity_type = entity_type
        self.table = table
        # A composite primary key leaves `entity_id` empty (and bulk statements unrecorded).
        self.pk = primary_key[0] if len(primary_key) == 1 else None
        self.fields = tuple(fields)
        self.by_key = {field.key: field for field in fields}


def entity_type_of(model: type[Any]) -> str:
    """The `entity_type` of a model's rows: its class name in snake_case (`Lead` -> `lead`)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower()


def is_secret_column(name: str) -> bool:
    """Whether a column's values are never recorded (its name has a word of SECRET_WORDS)."""
    return not SECRET_WORDS.isdisjoint(name.lower().split("_"))


@cache
def _plan(mapper: Mapper[Any]) -> _Plan | None:
    """The plan of `mapper`'s model, or None when it is not audited."""
    model = mapper.class_
    table = mapper.local_table
    if not getattr(model, "__audited__", True) or not isinstance(table, Table):
        return None
    primary_key: list[_Field] = []
    fields: list[_Field] = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if not isinstance(column, Column) or column.table is not table:
            continue  # a computed property (column_property), not something a write changes
        field = _Field(prop.key, column.key, is_secret_column(column.key))
        if column.primary_key:
            primary_key.append(field)
        elif column.info.get("audit") is not False and column.key not in SKIPPED_COLUMNS:
            fields.append(field)
    return _Plan(entity_type_of(model), table, primary_key, fields)


@cache
def _plan_for_table(name: str) -> _Plan | None:
    for mapper in Base.registry.mappers:
        if isinstance(mapper.local_table, Table) and mapper.local_table.name == name:
            return _plan(mapper)
    return None


def audit_value(value: object) -> Any:
    """Return `value` as JSON the trail can hold: enums by value, times in ISO, text cut."""
    if isinstance(value, Enum):
        value = value.value
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "[binary]"
    text = str(value)
    return text if len(text) <= MAX_TEXT_LENGTH else text[: MAX_TEXT_LENGTH - 1] + "…"


def change(old: object, new: object, *, redact: bool = False) -> dict[str, Any]:
    """One field's entry of `changes`: `{"old": ..., "new": ...}`."""
    if redact:
        return {
            "old": None if old is None else REDACTED,
            "new": None if new is None else REDACTED,
        }
    return {"old": audit_value(old), "new": audit_value(new)}


class AuditedSession(Session):
    """A `Session` whose flushes, bulk statements and events are written to the trail."""


def sessions_acting_as(
    factory: async_sessionmaker[AsyncSession], actor: str
) -> async_sessionmaker[AsyncSession]:
    """Return a factory like `factory` whose sessions record `actor` as who acts (`worker`)."""
    options = dict(factory.kw)
    options["info"] = {**options.get("info", {}), SESSION_ACTOR: actor}
    return async_sessionmaker(class_=factory.class_, **options)


def record_event(
    session: Session | AsyncSession,
    *,
    action: AuditAction,
    entity_type: str,
    entity_id: int | None,
    changes: Changes | None = None,
) -> None:
    """Add a row to the trail of `session`'s transaction; it is written at COMMIT."""
    sync_session = session.sync_session if isinstance(session, AsyncSession) else session
    _pending(sync_session).append(_row(sync_session, action, entity_type, entity_id, changes))


def _pending(session: Session) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = session.info.setdefault(_ROWS, [])
    return rows


def _row(
    session: Session,
    action: AuditAction,
    entity_type: str,
    entity_id: object,
    changes: Changes | None,
) -> dict[str, Any]:
    context = current_audit_context()
    session_actor = session.info.get(SESSION_ACTOR)
    return {
        "occurred_at": utcnow(),
        "actor": session_actor or context.actor,
        "actor_id": None if session_actor else context.actor_id,
        "action": action.value,
        "entity_type": entity_type,
        "entity_id": entity_id if isinstance(entity_id, int) else None,
        "changes": changes,
        "request_id": context.request_id,
        "client_ip": context.client_ip,
    }


# --- Flushes ---------------------------------------------------------------------------


@event.listens_for(AuditedSession, "after_flush")
def _after_flush(session: Session, _flush_context: object) -> None:
    """Record what the flush wrote (history and the new/dirty/deleted sets are still there)."""
    for action, objects in (
        (AuditAction.CREATE, session.new),
        (AuditAction.UPDATE, session.dirty),
        (AuditAction.DELETE, session.deleted),
    ):
        for obj in objects:
            state: InstanceState[Any] = sa_inspect(obj)
            plan = _plan(state.mapper)
            if plan is None:
                continue
            changes = _changes_of(state, plan, action)
            if changes or action is not AuditAction.UPDATE:
                entity_id = state.dict.get(plan.pk.key) if plan.pk else None
                record_event(
                    session,
                    action=action,
                    entity_type=plan.entity_type,
                    entity_id=entity_id,
                    changes=changes or None,
                )


def _changes_of(state: InstanceState[Any], plan: _Plan, action: AuditAction) -> Changes:
    values = state.dict
    if action is AuditAction.CREATE:
        return {
            f.column: change(None, values[f.key], redact=f.redact)
            for f in plan.fields
            if values.get(f.key) is not None
        }
    if action is AuditAction.DELETE:
        return {
            f.column: change(values[f.key], None, redact=f.redact)
            for f in plan.fields
            if values.get(f.key) is not None
        }
    changes: Changes = {}
    for key in state.committed_state:  # the attributes set since the last flush
        field = plan.by_key.get(key)
        if field is None:
            continue
        history = state.attrs[key].history
        if history.has_changes():
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            changes[field.column] = change(old, new, redact=field.redact)
    return changes


# --- Bulk UPDATE and DELETE ------------------------------------------------------------


@event.listens_for(AuditedSession, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> Result[Any] | None:
    """Record the rows a bulk UPDATE or DELETE on an audited table changes."""
    statement = state.statement
    if not isinstance(statement, Update | Delete) or not isinstance(statement.table, Table):
        return None
    plan = _plan_for_table(statement.table.name)
    if plan is None or plan.pk is None:
        return None
    update = statement if isinstance(statement, Update) else None
    fields = plan.fields if update is None else _fields_set(update, plan)
    if not fields:
        return None  # only bookkeeping columns change
    if state.is_orm_statement and state.session.autoflush:
        state.session.flush()  # what the session holds must be in the rows read before
    before = _read_matched(state, plan.table, plan.pk, fields, statement.whereclause)
    if not before:
        return None
    result = state.invoke_statement()
    if update is None:
        after: Snapshot = {}
    else:
        after = _values_after(state, plan.table, plan.pk, fields, update, before)
    action = AuditAction.DELETE if update is None else AuditAction.UPDATE
    for entity_id, old in before.items():
        new = after.get(entity_id, {})
        changes = {
            f.column: change(old[f.column], new.get(f.column), redact=f.redact)
            for f in fields
            if old[f.column] != new.get(f.column)
        }
        if changes:
            record_event(
                state.session,
                action=action,
                entity_type=plan.entity_type,
                entity_id=entity_id,
                changes=changes,
            )
    return result


def _column_names(statement: Update) -> dict[str | None, Any]:
    """The SET of `statement` by column name (no public accessor exists)."""
    values: Mapping[Any, Any] = statement._values or {}
    return {
        key if isinstance(key, str) else getattr(key, "key", None): v for key, v in values.items()
    }


def _fields_set(statement: Update, plan: _Plan) -> tuple[_Field, ...]:
    """The audited fields the statement's SET names (all of them, if it names none itself)."""
    names = _column_names(statement)
    if not names:  # SET taken from the parameters (executemany, bulk by primary key)
        return plan.fields
    return tuple(field for field in plan.fields if field.column in names)


def _parameter_sets(state: ORMExecuteState) -> list[dict[str, Any]]:
    parameters = state.parameters
    if isinstance(parameters, Mapping):
        return [dict(parameters)]
    return [dict(p) for p in parameters] if parameters else [{}]


def _read_matched(
    state: ORMExecuteState,
    table: Table,
    pk_field: _Field,
    fields: Sequence[_Field],
    where: ColumnElement[bool] | None,
) -> Snapshot:
    """Read the audited values of the rows the statement will change, locking them."""
    pk = table.c[pk_field.column]
    query = select(pk, *(table.c[f.column] for f in fields)).with_for_update()
    sets = _parameter_sets(state)
    if len(sets) == 1:
        query = query if where is None else query.where(where)
        return _snapshot(_connection(state).execute(query, sets[0]), fields)
    # executemany: each parameter set names its row by the primary key (`id = :b_id`), or
    # there is no WHERE (ORM bulk UPDATE by primary key); else each set's WHERE, OR-ed.
    key = pk_field.key if where is None else _primary_key_parameter(where, pk)
    if key is not None:
        query = query.where(pk.in_([p.get(key) for p in sets]))
    elif where is not None:
        query = query.where(or_(*(_bound(where, p) for p in sets)))
    return _snapshot(_connection(state).execute(query), fields)


def _primary_key_parameter(where: ColumnElement[bool], pk: ColumnElement[Any]) -> str | None:
    """The parameter a top-level term of `where` compares the primary key to (`id = :b_id`).

    The rows that have those ids are the most the statement can change; those it leaves
    alone read the same after it, so they record nothing.
    """
    conjunction = isinstance(where, BooleanClauseList) and where.operator is operators.and_
    for element in where.clauses if conjunction else [where]:
        if (
            isinstance(element, BinaryExpression)
            and element.operator is operators.eq
            and isinstance(element.right, BindParameter)
            and not element.right.unique
            and pk.shares_lineage(element.left)
        ):
            return str(element.right.key)
    return None


def _bound(where: ColumnElement[bool], values: Mapping[str, Any]) -> ColumnElement[bool]:
    """`where` with its named parameters replaced by one parameter set's values."""

    def replace(element: Any, **_kw: Any) -> Any:
        if isinstance(element, BindParameter) and element.key in values:
            return literal(values[element.key], type_=element.type)
        return None

    return replacement_traverse(where, {}, replace)


def _values_after(
    state: ORMExecuteState,
    table: Table,
    pk_field: _Field,
    fields: Sequence[_Field],
    statement: Update,
    before: Snapshot,
) -> Snapshot:
    """The new values: the SET's constants, or read again when any is not a constant."""
    constants = None if state.is_executemany else _constant_values(statement, fields)
    if constants is not None:
        return dict.fromkeys(before, constants)
    pk = table.c[pk_field.column]
    query = select(pk, *(table.c[f.column] for f in fields)).where(pk.in_(list(before)))
    return _snapshot(_connection(state).execute(query), fields)


def _snapshot(rows: Iterable[Sequence[Any]], fields: Sequence[_Field]) -> Snapshot:
    names = [field.column for field in fields]
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def _constant_values(statement: Update, fields: Iterable[_Field]) -> dict[str, Any] | None:
    """The SET's values by column when each is a constant, else None."""
    by_name = _column_names(statement)
    constants: dict[str, Any] = {}
    for field in fields:
        value = by_name.get(field.column)
        if isinstance(value, Null):
            constants[field.column] = None
        elif isinstance(value, BindParameter) and value.unique and value.callable is None:
            constants[field.column] = value.value
        else:
            return None
    return constants


def _connection(state: ORMExecuteState) -> Any:
    return state.session.connection(bind_arguments=state.bind_arguments)


# --- Writing at COMMIT, dropping on ROLLBACK -------------------------------------------


_TABLE = AuditEvent.__table__
assert isinstance(_TABLE, Table)  # narrows the type for Core's INSERT
_INSERT = insert(_TABLE)


@event.listens_for(AuditedSession, "before_commit")
def _before_commit(session: Session) -> None:
    """Insert the transaction's rows in one statement, just before it commits."""
    session.flush()  # changes not flushed yet are recorded too
    rows = session.info.pop(_ROWS, None)
    if rows:
        session.connection().execute(_INSERT, rows)


@event.listens_for(AuditedSession, "after_transaction_create")
def _after_transaction_create(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:  # a savepoint: remember how many rows came before it
        session.info.setdefault(_SAVEPOINTS, {})[transaction] = len(_pending(session))


@event.listens_for(AuditedSession, "after_soft_rollback")
def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.nested:  # the savepoint's changes are undone, so are their rows
        kept = session.info.get(_SAVEPOINTS, {}).pop(previous, None)
        if kept is not None:
            del _pending(session)[kept:]


@event.listens_for(AuditedSession, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (rows written) or rolled back (rows dropped)
        session.info.pop(_ROWS, None)
        session.info.pop(_SAVEPOINTS, None)
