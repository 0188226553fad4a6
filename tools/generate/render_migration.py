"""Render the Alembic revision that creates an entity's table, exactly as its model has it.

Written from the spec rather than by autogenerate, whose SQLite reflection renders a BIGINT
foreign key as INTEGER; `tests/migrations/test_migrations.py` proves the two agree.
"""

from datetime import UTC, datetime

from tools.generate.plan import INT32, USERS, Column, Plan
from tools.generate.render_model import _check
from tools.generate.source import quote

BIGINT_ID = 'sa.BigInteger().with_variant(sa.Integer(), "sqlite")'
_TYPES = {
    "long_text": "sa.Text()",
    "email": "sa.String(length=320)",
    "phone": "sa.String(length=20)",
    "url": "sa.String(length=2048)",
    "boolean": "sa.Boolean()",
    "date": "sa.Date()",
    "datetime": "sa.DateTime(timezone=True)",
    "uuid": "sa.Uuid()",
    "json": "sa.JSON()",
}
_ON_DELETE = {"cascade": "CASCADE", "restrict": "RESTRICT", "set_null": "SET NULL"}


def render_migration(plan: Plan, *, revision: str, down_revision: str | None) -> str:
    """Return the source of the revision creating the entity's table and indexes."""
    table = plan.names.plural
    columns = [f'        sa.Column("id", {BIGINT_ID}, nullable=False),']
    constraints = []
    if plan.spec.owner_scoped:
        columns.append(f'        sa.Column("owner_id", {BIGINT_ID}, nullable=False),')
        constraints.append(_foreign_key(table, "owner_id", USERS, "RESTRICT"))
    for column in plan.columns:
        columns.append(
            f'        sa.Column("{column.name}", {_type(plan, column)}, '
            f"nullable={column.nullable}),"
        )
        if column.spec.type == "reference":
            target = plan.references[column.field].plural
            constraints.append(
                _foreign_key(table, column.name, target, _ON_DELETE[column.spec.on_delete])
            )
        check = _check(column)
        if check:
            name = f"ck_{table}_{column.name}_range"
            constraints.append(
                f"        sa.CheckConstraint({quote(check)}, name=op.f({quote(name)})),"
            )
        if column.spec.unique:
            keys = ["owner_id", column.name] if column.spec.unique == "per_owner" else [column.name]
            name = f"uq_{table}_{'_'.join(keys)}"
            listed = ", ".join(quote(k) for k in keys)
            constraints.append(f"        sa.UniqueConstraint({listed}, name=op.f({quote(name)})),")
    columns += [
        '        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),',
        '        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),',
    ]
    constraints.append(f'        sa.PrimaryKeyConstraint("id", name=op.f("pk_{table}")),')
    indexes = [
        f'    op.create_index("ix_{table}_{"_".join(keys)}", "{table}", '
        f"[{', '.join(quote(k) for k in keys)}], unique=False)"
        for keys in plan.indexes()
    ]
    drops = [
        f'    op.drop_index("ix_{table}_{"_".join(keys)}", table_name="{table}")'
        for keys in reversed(plan.indexes())
    ]
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    down = quote(down_revision) if down_revision else "None"
    return "\n".join(
        [
            f'"""{table}',
            "",
            f"The table of the `{plan.names.entity}` entity, generated from "
            f"backend/app/docs/specs/{plan.names.entity}.yaml.",
            "",
            f"Revision ID: {revision}",
            f"Revises: {down_revision or ''}",
            f"Create Date: {created}",
            '"""',
            "",
            "from collections.abc import Sequence",
            "",
            "import sqlalchemy as sa",
            "from alembic import op",
            "",
            f'revision: str = "{revision}"',
            f"down_revision: str | None = {down}",
            "branch_labels: str | Sequence[str] | None = None",
            "depends_on: str | Sequence[str] | None = None",
            "",
            "",
            "def upgrade() -> None:",
            "    op.create_table(",
            f'        "{table}",',
            *columns,
            *constraints,
            "    )",
            *indexes,
            "",
            "",
            "def downgrade() -> None:",
            *drops,
            f'    op.drop_table("{table}")',
            "",
        ]
    )


def _foreign_key(table: str, column: str, target: str, on_delete: str) -> str:
    name = f"fk_{table}_{column}_{target}"
    return (
        f'        sa.ForeignKeyConstraint(["{column}"], ["{target}.id"], '
        f'name=op.f("{name}"), ondelete="{on_delete}"),'
    )


def _type(plan: Plan, column: Column) -> str:
    spec = column.spec
    if spec.type == "short_text":
        return f"sa.String(length={spec.max_length})"
    if spec.type == "enum":
        values = ", ".join(quote(v) for v in spec.values)
        name = "".join(
            f"_{c.lower()}" if c.isupper() and i else c.lower()
            for i, c in enumerate(plan.enum_class(column.field))
        )
        length = max(16, *(len(v) for v in spec.values))
        return (
            f"sa.Enum({values}, name={quote(name)}, native_enum=False, "
            f"create_constraint=True, length={length})"
        )
    if spec.type == "money":
        return "sa.String(length=3)" if column.name.endswith("_currency") else "sa.BigInteger()"
    if spec.type == "integer":
        small = all(b is not None and abs(b) <= INT32 for b in (spec.minimum, spec.maximum))
        return "sa.Integer()" if small else "sa.BigInteger()"
    if spec.type == "decimal":
        return f"sa.Numeric(precision={spec.precision}, scale={spec.scale})"
    if spec.type == "reference":
        return BIGINT_ID
    return _TYPES[spec.type]
