"""Render `backend/app/schemas/<entity>.py`: the wire shapes of an entity."""

import textwrap
from typing import Any

from tools.generate.plan import Plan, example_of, read_example_of
from tools.generate.source import Imports, docstring, enum_member, literal, quote
from tools.generate.spec import FieldSpec

SAFE_MAX = 2**53 - 1  # integers JSON carries exactly everywhere


def render_schemas(plan: Plan) -> str:
    """Return the source of the entity's schemas module."""
    names = plan.names
    imports = Imports()
    imports.add("pydantic", "ConfigDict", "JsonValue")
    imports.add("backend.app.schemas.common", "InputModel", "OutputModel", "Page")
    aliases = _aliases(plan, imports)
    upper = names.entity.upper()
    example = _example(plan)
    read_example = _read_example(plan)
    lines = [
        docstring(f"Wire shapes of {names.plural.replace('_', ' ')}."),
        "",
        *imports_placeholder(),
        *aliases,
        "",
        f"_{upper}_EXAMPLE: dict[str, JsonValue] = {literal(example)}",
        "",
        f"_{upper}_READ_EXAMPLE: dict[str, JsonValue] = {{**_{upper}_EXAMPLE, "
        + ", ".join(f"{quote(k)}: {literal(v)}" for k, v in read_example.items())
        + "}",
        "",
    ]
    lines += _create(plan, imports) + _update(plan, imports) + _read(plan, imports)
    lines += _page(plan) + _sort(plan, imports)
    source = "\n".join(lines) + "\n"
    return source.replace("\n".join(imports_placeholder()), "\n".join(imports.render()))


def imports_placeholder() -> list[str]:
    """A marker the imports replace once every renderer step has added its own."""
    return ["# IMPORTS"]


def _alias_name(plan: Plan, field: str) -> str:
    return plan.names.cls + "".join(part.capitalize() for part in field.split("_"))


def _aliases(plan: Plan, imports: Imports) -> list[str]:
    """`LeadName = Annotated[str, single_line(max_length=200)]` for constrained fields."""
    lines: list[str] = []
    for name, spec in plan.input_fields.items():
        annotated = _annotated(plan, name, spec, imports)
        if annotated is None:
            continue
        imports.add("typing", "Annotated")
        if spec.type == "phone":
            lines.append(
                "# Normalised to E.164 by `core.phone` with the DEFAULT_PHONE_REGION setting."
            )
        if spec.type == "money":
            lines.append(f"{_alias_name(plan, name)}Amount = {annotated}")
            continue
        lines.append(f"{_alias_name(plan, name)} = {annotated}")
    return lines


def _annotated(plan: Plan, name: str, spec: FieldSpec, imports: Imports) -> str | None:
    fields = "backend.app.schemas.fields"
    if spec.type == "short_text" and spec.pattern:
        imports.add("pydantic", "StringConstraints")
        fewest = spec.min_length if spec.min_length is not None else 1
        return (
            f"Annotated[str, StringConstraints(strict=True, min_length={fewest}, "
            f"max_length={spec.max_length}, pattern={_raw(spec.pattern)})]"
        )
    if spec.type == "short_text":
        imports.add(fields, "single_line")
        minimum = "" if spec.min_length is None else f", min_length={spec.min_length}"
        return f"Annotated[str, single_line(max_length={spec.max_length}{minimum})]"
    if spec.type == "long_text":
        imports.add(fields, "multi_line")
        minimum = f", min_length={spec.min_length}" if spec.min_length else ""
        return f"Annotated[str, multi_line(max_length={spec.max_length or 10000}{minimum})]"
    if spec.type == "phone":
        imports.add(fields, "single_line")
        return "Annotated[str, single_line(max_length=40)]"
    if spec.type == "integer":
        imports.add(fields, "integer")
        ge = int(spec.minimum) if spec.minimum is not None else -SAFE_MAX
        le = int(spec.maximum) if spec.maximum is not None else SAFE_MAX
        return f"Annotated[int, integer(ge={ge}, le={le})]"
    if spec.type == "decimal":
        imports.add("decimal", "Decimal")
        imports.add(fields, "decimal_number")
        digits = spec.precision - spec.scale
        top = "9" * digits + ("." + "9" * spec.scale if spec.scale else "")
        low = str(spec.minimum) if spec.minimum is not None else f"-{top}"
        high = str(spec.maximum) if spec.maximum is not None else top
        return (
            f"Annotated[Decimal, decimal_number(places={spec.scale}, "
            f"minimum={quote(low)}, maximum={quote(high)})]"
        )
    if spec.type == "money":
        imports.add(fields, "minor_units")
        most = int(spec.maximum) if spec.maximum is not None else 99_999_999
        least = int(spec.minimum) if spec.minimum is not None else 0
        return f"Annotated[int, minor_units(minimum={least}, maximum={most})]"
    return None


def _raw(pattern: str) -> str:
    """A raw string literal of a regex."""
    return 'r"' + pattern.replace('"', '\\"') + '"'


def _input_type(plan: Plan, name: str, spec: FieldSpec, imports: Imports) -> str:
    """The type of a field in a request body (before `| None`)."""
    fields = "backend.app.schemas.fields"
    if _annotated(plan, name, spec, Imports()) is not None and spec.type != "money":
        return _alias_name(plan, name)
    simple = {
        "boolean": "StrictBool",
        "email": "StrictEmail",
        "url": "HttpUrlText",
        "date": "IsoDate",
        "datetime": "UtcDateTime",
        "reference": "RecordId",
    }
    if spec.type in simple:
        imports.add(fields, simple[spec.type])
        return simple[spec.type]
    if spec.type == "enum":
        imports.add(f"backend.app.models.{plan.names.entity}", plan.enum_class(name))
        return plan.enum_class(name)
    if spec.type == "uuid":
        imports.add("uuid", "UUID")
        return "UUID"
    if spec.type == "json":
        return "dict[str, JsonValue]"
    raise ValueError(f"no input type for {spec.type}")


def _input_fields(plan: Plan, imports: Imports, *, update: bool) -> list[str]:
    lines: list[str] = []
    for name, spec in plan.input_fields.items():
        if spec.type == "money":
            lines += _money_fields(plan, name, spec, imports, update=update)
            continue
        kind = _input_type(plan, name, spec, imports)
        lines.append(_input_line(plan, name, spec, kind, imports, update=update))
    return lines


def _input_line(
    plan: Plan, name: str, spec: FieldSpec, kind: str, imports: Imports, *, update: bool
) -> str:
    never_null = spec.required or spec.default is not None
    if update:
        if never_null:
            imports.add("backend.app.schemas.fields", "Omittable")
            return f"    {name}: Omittable[{kind}] = None"
        return f"    {name}: {kind} | None = None"
    if spec.required:
        return f"    {name}: {kind}"
    if spec.default is not None:
        return f"    {name}: {kind} = {_default(plan, name, spec)}"
    return f"    {name}: {kind} | None = None"


def _money_fields(
    plan: Plan, name: str, spec: FieldSpec, imports: Imports, *, update: bool
) -> list[str]:
    imports.add("backend.app.schemas.fields", "Currency")
    amount = f"{_alias_name(plan, name)}Amount"
    lines = []
    for column, kind in ((f"{name}_amount", amount), (f"{name}_currency", "Currency")):
        lines.append(_input_line(plan, column, spec, kind, imports, update=update))
    return lines


def _default(plan: Plan, name: str, spec: FieldSpec) -> str:
    if spec.type == "enum":
        return f"{plan.enum_class(name)}.{enum_member(str(spec.default))}"
    return literal(spec.default)


def _create(plan: Plan, imports: Imports) -> list[str]:
    if not plan.has("create"):
        return []
    names = plan.names
    server_set = ["the id"]
    if plan.spec.owner_scoped:
        server_set.append("the owner")
    server_set += [f"`{n}`" for n, f in plan.api_fields.items() if f.read_only]
    server_set += [f"`{flag}`" for flag in plan.opt_out_flags]
    sets = ", ".join(server_set) + " and the timestamps"
    return [
        "",
        f"class {names.cls}Create(InputModel):",
        f'    """A new {names.label}.',
        "",
        *textwrap.wrap(
            f"The server sets {sets}.", width=96, initial_indent="    ", subsequent_indent="    "
        ),
        '    """',
        "",
        "    model_config = ConfigDict(json_schema_extra={"
        f'"examples": [_{names.entity.upper()}_EXAMPLE]}})',
        "",
        *_input_fields(plan, imports, update=False),
        "",
    ]


def _update(plan: Plan, imports: Imports) -> list[str]:
    if not plan.has("update"):
        return []
    example = plan.spec.update_example or _first_example(plan)
    return [
        "",
        f"class {plan.names.cls}Update(InputModel):",
        '    """A partial update: omitted fields stay, `null` clears an optional field."""',
        "",
        f'    model_config = ConfigDict(json_schema_extra={{"examples": [{literal(example)}]}})',
        "",
        *_input_fields(plan, imports, update=True),
        "",
    ]


def _first_example(plan: Plan) -> dict[str, Any]:
    name, spec = next(iter(plan.input_fields.items()))
    if spec.type == "money":
        return {f"{name}_amount": 6000}
    return {name: example_of(name, spec)}


def _read(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    lines = [
        "",
        f"class {names.cls}Read(OutputModel):",
        f"    {docstring(f'A {names.label} as the API returns it.')}",
        "",
        "    model_config = ConfigDict(json_schema_extra={"
        f'"examples": [_{names.entity.upper()}_READ_EXAMPLE]}})',
        "",
        "    id: int",
    ]
    nullable = {column.name: column.nullable for column in plan.columns}
    for name, spec in plan.api_fields.items():
        columns = [f"{name}_amount", f"{name}_currency"] if spec.type == "money" else [name]
        for column in columns:
            kind = _read_type(plan, name, column, spec, imports)
            optional = " | None" if nullable[column] else ""
            lines.append(f"    {column}: {kind}{optional}")
    lines += [f"    {flag}: bool" for flag in plan.opt_out_flags]
    if plan.spec.owner_scoped:
        lines.append("    owner_id: int")
    imports.add("datetime", "datetime")
    lines += ["    created_at: datetime", "    updated_at: datetime", ""]
    return lines


def _read_type(plan: Plan, name: str, column: str, spec: FieldSpec, imports: Imports) -> str:
    if spec.type == "enum":
        imports.add(f"backend.app.models.{plan.names.entity}", plan.enum_class(name))
        return plan.enum_class(name)
    if spec.type == "money":
        return "str" if column.endswith("_currency") else "int"
    plain = {
        "integer": "int",
        "reference": "int",
        "boolean": "bool",
        "json": "dict[str, JsonValue]",
    }
    if spec.type in plain:
        return plain[spec.type]
    if spec.type == "decimal":
        imports.add("decimal", "Decimal")
        return "Decimal"
    if spec.type == "uuid":
        imports.add("uuid", "UUID")
        return "UUID"
    if spec.type in {"date", "datetime"}:
        imports.add("datetime", spec.type)
        return spec.type
    return "str"


def _page(plan: Plan) -> list[str]:
    names = plan.names
    upper = names.entity.upper()
    return [
        "",
        f"class {names.cls}Page(Page[{names.cls}Read]):",
        f"    {docstring(f'A page of {names.plural.replace(chr(95), chr(32))}.')}",
        "",
        "    model_config = ConfigDict(",
        "        json_schema_extra={",
        f'            "examples": [{{"items": [_{upper}_READ_EXAMPLE], "total": 1, '
        '"limit": 50, "offset": 0}]',
        "        }",
        "    )",
        "",
    ]


def _sort(plan: Plan, imports: Imports) -> list[str]:
    if not plan.has("list"):
        return []
    imports.add("enum", "StrEnum")
    label = plan.names.label
    members = []
    for key in plan.sorts:
        members += [f"    {enum_member(key)} = {quote(key)}"]
        members += [f"    {enum_member(key)}_DESC = {quote('-' + key)}"]
    return [
        "",
        f"class {plan.names.cls}Sort(StrEnum):",
        f"    {docstring(f'Sort orders of the {label} list; a leading `-` means descending.')}",
        "",
        *members,
        "",
    ]


def _example(plan: Plan) -> dict[str, Any]:
    example: dict[str, Any] = {}
    for name, spec in plan.input_fields.items():
        value = example_of(name, spec)
        if spec.type == "money":
            example[f"{name}_amount"] = value["amount"] if isinstance(value, dict) else value
            example[f"{name}_currency"] = "usd"
        else:
            example[name] = value
    return example


def _read_example(plan: Plan) -> dict[str, Any]:
    extra: dict[str, Any] = {"id": 42}
    for name, spec in plan.api_fields.items():
        read = read_example_of(name, spec)
        if spec.read_only or (spec.type == "phone" and read != example_of(name, spec)):
            extra[name] = read
    extra.update(dict.fromkeys(plan.opt_out_flags, False))
    if plan.spec.owner_scoped:
        extra["owner_id"] = 1
    extra["created_at"] = "2026-01-05T09:30:00Z"
    extra["updated_at"] = "2026-01-05T09:30:00Z"
    return extra
