"""Render `backend/app/models/<entity>.py`: the SQLAlchemy model of an entity."""

from tools.generate.plan import INT32, USERS, Column, Plan
from tools.generate.source import Imports, docstring, enum_member, quote

_TYPES = {
    "short_text": ("str", "String({max_length})"),
    "long_text": ("str", "Text"),
    "email": ("str", "String(320)"),
    "phone": ("str", "String(20)"),
    "url": ("str", "String(2048)"),
    "boolean": ("bool", ""),
    "date": ("date", ""),
    "datetime": ("datetime", ""),
    "uuid": ("uuid.UUID", "Uuid"),
    "json": ("dict[str, Any]", "JSON"),
}


def render_model(plan: Plan) -> str:
    """Return the source of the entity's model module."""
    imports = Imports()
    imports.add("sqlalchemy.orm", "Mapped", "mapped_column")
    imports.add("backend.app.models.base", "Base", "BigIntId", "TimestampMixin")
    names = plan.names
    lines = [docstring(f"The `{names.plural}` table. {plan.spec.description}"), ""]
    body: list[str] = []
    for field_name, spec in plan.enums.items():
        imports.add("enum", "StrEnum")
        body += [
            "",
            f"class {plan.enum_class(field_name)}(StrEnum):",
            f"    {docstring(spec.enum_description or f'The {field_name} of a {names.label}.')}",
            "",
            *(f"    {enum_member(value)} = {quote(value)}" for value in spec.values),
            "",
        ]
    body += ["", f"class {names.cls}(TimestampMixin, Base):"]
    scope = "Owned by one user; indexes" if plan.spec.owner_scoped else "Indexes"
    body += [
        f'    """{plan.spec.description}',
        "",
        f"    {scope} serve every filter and sort of the list.",
        '    """',
    ]
    body += ["", f'    __tablename__ = "{names.plural}"']
    body += _table_args(plan, imports)
    body += ["", "    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)"]
    if plan.spec.owner_scoped:
        imports.add("sqlalchemy", "ForeignKey")
        body.append(
            '    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))'
        )
    for column in plan.columns:
        body += _column(plan, column, imports)
    for flag, phone in plan.opt_out_flags.items():
        imports.add("sqlalchemy", "exists")
        imports.add("sqlalchemy.orm", "column_property")
        imports.add("backend.app.models.sms_opt_out", "SmsOptOut")
        body += [
            f"    # Whether the {phone} number replied STOP (kept per number in sms_opt_outs).",
            f"    {flag}: Mapped[bool] = column_property(",
            f"        exists().where(SmsOptOut.phone == {phone}), expire_on_flush=False",
            "    )",
        ]
    return "\n".join([*lines, *imports.render(), *body, ""])


def _table_args(plan: Plan, imports: Imports) -> list[str]:
    args: list[str] = []
    table = plan.names.plural
    for columns in plan.indexes():
        imports.add("sqlalchemy", "Index")
        listed = ", ".join(quote(c) for c in columns)
        args.append(f'Index("ix_{table}_{"_".join(columns)}", {listed}),')
    for column in plan.columns:
        spec = column.spec
        if spec.unique:
            imports.add("sqlalchemy", "UniqueConstraint")
            keys = ["owner_id", column.name] if spec.unique == "per_owner" else [column.name]
            listed = ", ".join(quote(k) for k in keys)
            args.append(f'UniqueConstraint({listed}, name="uq_{table}_{"_".join(keys)}"),')
        check = _check(column)
        if check:
            imports.add("sqlalchemy", "CheckConstraint")
            args.append(f'CheckConstraint({quote(check)}, name="{column.name}_range"),')
    if not args:
        return []
    return ["    __table_args__ = (", *(f"        {arg}" for arg in args), "    )"]


def _check(column: Column) -> str | None:
    """The CHECK a column needs beyond its type: numeric bounds, a minimum length."""
    spec, name = column.spec, column.name
    if spec.type == "money":
        if name.endswith("_currency"):
            return f"length({name}) = 3"
        low = spec.minimum if spec.minimum is not None else 0
        high = f" AND {name} <= {spec.maximum}" if spec.maximum is not None else ""
        return f"{name} >= {low}{high}"
    if spec.type in {"integer", "decimal"}:
        parts = []
        if spec.minimum is not None:
            parts.append(f"{name} >= {spec.minimum}")
        if spec.maximum is not None:
            parts.append(f"{name} <= {spec.maximum}")
        return " AND ".join(parts) or None
    if spec.type in {"short_text", "long_text"} and spec.min_length:
        return f"length({name}) >= {spec.min_length}"
    return None


def _column(plan: Plan, column: Column, imports: Imports) -> list[str]:
    spec = column.spec
    python, sql = _python_and_sql(plan, column, imports)
    kwargs = [sql] if sql else []
    if spec.default is not None:
        default = spec.default
        if spec.type == "enum":
            kwargs.append(f"default={plan.enum_class(column.field)}.{enum_member(default)}")
        else:
            kwargs.append(f"default={default!r}")
    optional = " | None" if column.nullable else ""
    comment = [f"    # {spec.description}"] if spec.description else []
    call = f"mapped_column({', '.join(kwargs)})" if kwargs else ""
    if not call:
        return [*comment, f"    {column.name}: Mapped[{python}{optional}]"]
    return [*comment, f"    {column.name}: Mapped[{python}{optional}] = {call}"]


def _python_and_sql(plan: Plan, column: Column, imports: Imports) -> tuple[str, str]:
    spec = column.spec
    if spec.type == "enum":
        imports.add("backend.app.models.base", "enum_column")
        enum = plan.enum_class(column.field)
        return enum, f"enum_column({enum})"
    if spec.type == "money":
        if column.name.endswith("_currency"):
            imports.add("sqlalchemy", "String")
            return "str", "String(3)"
        imports.add("sqlalchemy", "BigInteger")
        return "int", "BigInteger"
    if spec.type == "integer":
        small = all(
            bound is not None and abs(bound) <= INT32 for bound in (spec.minimum, spec.maximum)
        )
        imports.add("sqlalchemy", "Integer" if small else "BigInteger")
        return "int", "Integer" if small else "BigInteger"
    if spec.type == "decimal":
        imports.add("decimal", "Decimal")
        imports.add("sqlalchemy", "Numeric")
        return "Decimal", f"Numeric({spec.precision}, {spec.scale})"
    if spec.type == "reference":
        imports.add("sqlalchemy", "ForeignKey")
        target = plan.references[column.field].plural if column.field in plan.references else USERS
        on_delete = {"cascade": "CASCADE", "restrict": "RESTRICT", "set_null": "SET NULL"}
        return "int", f'ForeignKey("{target}.id", ondelete="{on_delete[spec.on_delete]}")'
    python, sql = _TYPES[spec.type]
    for module_name, symbol in (("datetime", "date"), ("datetime", "datetime")):
        if python == symbol:
            imports.add(module_name, symbol)
    if python == "uuid.UUID":
        imports.add_module("uuid")
    if python.startswith("dict[str, Any]"):
        imports.add("typing", "Any")
    sql = sql.format(max_length=spec.max_length)
    for symbol in ("String", "Text", "Uuid", "JSON"):
        if sql.startswith(symbol):
            imports.add("sqlalchemy", symbol)
    return python, sql
