"""Render `backend/app/crud/<plural>.py`: the data logic of an entity."""

from tools.generate.plan import Plan
from tools.generate.render_schemas import imports_placeholder
from tools.generate.source import Imports


def render_crud(plan: Plan) -> str:
    """Return the source of the entity's crud module."""
    names = plan.names
    imports = Imports()
    imports.add("sqlalchemy.ext.asyncio", "AsyncSession")
    imports.add(f"backend.app.models.{names.entity}", names.cls)
    scoped = plan.spec.owner_scoped
    if scoped:
        access = (
            f"Reads of one {names.label} go through `core.access.visible_record` (the "
            f"router's `Visible{names.cls}`), and the list through `owned_by`, so a member "
            f"only ever reaches their own {names.plural.replace('_', ' ')}."
        )
    else:
        access = f"Every signed-in user may see and change every {names.label}."
    lines = [
        '"""' + f"Data logic for {names.plural.replace('_', ' ')}. Functions never commit: "
        "the request's unit of work does.",
        "",
        _wrap(access),
        '"""',
        "",
        *imports_placeholder(),
    ]
    if plan.has("list"):
        lines += _sorts_and_filters(plan, imports)
    if plan.has("create"):
        lines += _create(plan, imports)
    if plan.has("update"):
        lines += _update(plan, imports)
    if plan.has("delete"):
        lines += _delete(plan, imports)
    if plan.has("list"):
        lines += _list(plan, imports)
    lines += _helpers(plan, imports)
    source = "\n".join(lines) + "\n"
    return source.replace("\n".join(imports_placeholder()), "\n".join(imports.render()))


def _wrap(text: str, width: int = 96) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def _region_arg(plan: Plan) -> str:
    return ", phone_region: str" if plan.phone_fields else ""


def _references_check(plan: Plan, imports: Imports, source: str, *, update: bool) -> list[str]:
    """Lines refusing a body that refers to a record the user may not see."""
    lines: list[str] = []
    for name, spec in plan.input_fields.items():
        if spec.type != "reference":
            continue
        target = plan.references[name]
        imports.add("backend.app.core.access", "require_visible")
        imports.add(f"backend.app.models.{target.entity}", target.cls)
        user = "owner" if not update else "user"
        condition = f"{source}.get({name!r}) is not None" if update else f"data.{name} is not None"
        value = f"{source}[{name!r}]" if update else f"data.{name}"
        lines += [
            f"    if {condition}:",
            f"        await require_visible(session, {target.cls}, record_id={value}, "
            f"user={user}, field={name!r})",
        ]
    return lines


def _create(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    imports.add(f"backend.app.schemas.{names.entity}", f"{names.cls}Create")
    owner = ""
    if plan.spec.owner_scoped or _has_references(plan):
        owner = ", owner: User"
        imports.add("backend.app.models.user", "User")
    raises = _create_raises(plan)
    lines = [
        "",
        "",
        f"async def create_{names.entity}(",
        f"    session: AsyncSession, *, data: {names.cls}Create{owner}{_region_arg(plan)}",
        f") -> {names.cls}:",
        '    """'
        + f"Insert a {names.label}"
        + (" owned by `owner`." if plan.spec.owner_scoped else "."),
        *raises,
        '    """',
        *_references_check(plan, imports, "data", update=False),
        "    values = data.model_dump()",
    ]
    for phone in plan.phone_fields:
        imports.add("backend.app.core.phone", "normalized_phone")
        lines.append(
            f'    values["{phone}"] = normalized_phone(values["{phone}"], '
            f'region=phone_region, field="{phone}")'
        )
    owner_value = ", owner_id=owner.id" if plan.spec.owner_scoped else ""
    lines += [
        f"    {names.entity} = {names.cls}(**values{owner_value})",
        f"    session.add({names.entity})",
        "    await session.flush()",
    ]
    lines += _refresh_flags(plan, imports, indent="    ")
    lines.append(f"    return {names.entity}")
    return lines


def _has_references(plan: Plan) -> bool:
    return any(spec.type == "reference" for spec in plan.input_fields.values())


def _create_raises(plan: Plan) -> list[str]:
    reasons = []
    if plan.phone_fields:
        reasons.append("        InvalidFieldError: a phone is not a valid number.")
    if any(spec.type == "reference" for spec in plan.input_fields.values()):
        reasons.append("        NotFoundError: a record it refers to is missing or not yours.")
    return ["", "    Raises:", *reasons] if reasons else []


def _refresh_flags(plan: Plan, imports: Imports, *, indent: str) -> list[str]:
    lines = []
    entity = plan.names.entity
    for flag, phone in plan.opt_out_flags.items():
        imports.add("backend.app.crud", "messages as crud_messages")
        lines.append(
            f"{indent}await crud_messages.refresh_opt_out(session, {entity}, "
            f'flag="{flag}", phone={entity}.{phone})'
        )
    return lines


def _update(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    entity = names.entity
    imports.add(f"backend.app.schemas.{entity}", f"{names.cls}Update")
    user = ", user: User" if any(s.type == "reference" for s in plan.input_fields.values()) else ""
    if user:
        imports.add("backend.app.models.user", "User")
    lines = [
        "",
        "",
        f"async def update_{entity}(",
        f"    session: AsyncSession, *, {entity}: {names.cls}, data: {names.cls}Update"
        f"{user}{_region_arg(plan)}",
        f") -> {names.cls}:",
        '    """Apply the fields set in `data`; `None` clears an optional field.',
        *_create_raises(plan),
        '    """',
        "    changes = data.model_dump(exclude_unset=True)",
        *_references_check(plan, imports, "changes", update=True),
    ]
    for phone in plan.phone_fields:
        imports.add("backend.app.core.phone", "normalized_phone")
        lines += [
            f'    if "{phone}" in changes:',
            f'        changes["{phone}"] = normalized_phone(changes["{phone}"], '
            f'region=phone_region, field="{phone}")',
        ]
    lines += [
        "    for field, value in changes.items():",
        f"        setattr({entity}, field, value)",
        "    await session.flush()",
    ]
    for flag, phone in plan.opt_out_flags.items():
        imports.add("backend.app.crud", "messages as crud_messages")
        lines += [
            f'    if "{phone}" in changes:',
            f"        await crud_messages.refresh_opt_out(session, {entity}, "
            f'flag="{flag}", phone={entity}.{phone})',
        ]
    lines.append(f"    return {entity}")
    return lines


def _delete(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    entity = names.entity
    what = f"Delete `{entity}`"
    if plan.spec.texts:
        what += " and its texts (a pending one is never sent)"
    lines = [
        "",
        "",
        f"async def delete_{entity}(session: AsyncSession, *, {entity}: {names.cls}) -> None:",
    ]
    payments = plan.spec.payments
    if not payments:
        lines += [
            f'    """{what}."""',
            f"    await session.delete({entity})",
            "    await session.flush()",
        ]
    else:
        imports.add("backend.app.core.errors", payments.error)
        imports.add("backend.app.crud", "payments as crud_payments")
        lines += [
            f'    """{what}.',
            "",
            f"    The {names.label} goes first: on PostgreSQL that waits for a request texting or "
            "billing it",
            "    right now (it locks the record), so what that request adds is seen below.",
            "",
            "    Raises:",
            f"        {payments.error}: the {names.label} has payments (its billing record stays).",
            '    """',
            f"    await session.delete({entity})",
            "    await session.flush()",
            f"    if await crud_payments.has_payments_about(session, about={entity}):",
            f"        raise {payments.error}",
        ]
    if plan.spec.texts:
        imports.add("backend.app.crud", "messages as crud_messages")
        lines.append(f"    await crud_messages.delete_texts_about(session, about={entity})")
    return lines


def _sorts_and_filters(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    imports.add("dataclasses", "dataclass")
    imports.add(f"backend.app.schemas.{names.entity}", f"{names.cls}Sort")
    columns = ", ".join(f'"{key}": {names.cls}.{key}' for key in plan.sorts)
    default = plan.spec.default_sort
    default_member = default.lstrip("-").upper() + ("_DESC" if default.startswith("-") else "")
    lines = [
        "",
        f"SORT_COLUMNS = {{{columns}}}",
        "",
        "",
        "@dataclass(frozen=True)",
        f"class {names.cls}Filters:",
        f'    """Filters of the {names.label} list; `None` filters nothing."""',
        "",
    ]
    for name, kind in filter_attributes(plan, imports):
        lines.append(f"    {name}: {kind} | None = None")
    if plan.search_fields:
        lines.append("    q: str | None = None")
    lines.append(f"    sort: {names.cls}Sort = {names.cls}Sort.{default_member}")
    return lines


def filter_attributes(plan: Plan, imports: Imports) -> list[tuple[str, str]]:
    """The filter dataclass's attributes: `(name, python type)`, in the spec's order."""
    return [(name, python) for name, python, _ in filter_parameters(plan, imports, Imports())]


def filter_parameters(
    plan: Plan, imports: Imports, query_imports: Imports
) -> list[tuple[str, str, str]]:
    """Each filter: `(name, python type, query parameter type)`, in the spec's order.

    The query type bounds what the database would refuse (a 64-bit overflow, NUL) so a bad
    filter is a 422, and reads text as query parameters arrive (`?done=true`, `?price=9.50`).
    """
    found: list[tuple[str, str, str]] = []
    for name, spec in plan.filters.items():
        python = _python_type(plan, name, imports)
        query = _query_type(plan, name, query_imports)
        if "in" in spec.filter:
            found.append((name, f"list[{python}]", f"list[{query}]"))
        elif "eq" in spec.filter:
            found.append((name, python, query))
        if "range" in spec.filter:
            found += [(f"{name}_from", python, query), (f"{name}_to", python, query)]
        if "contains" in spec.filter:
            found.append((f"{name}_contains", "str", "SearchText"))
    return found


def _python_type(plan: Plan, name: str, imports: Imports) -> str:
    spec = plan.fields[name]
    if spec.type == "enum":
        imports.add(f"backend.app.models.{plan.names.entity}", plan.enum_class(name))
        return plan.enum_class(name)
    kinds = {"integer": "int", "reference": "int", "boolean": "bool"}
    if spec.type in kinds:
        return kinds[spec.type]
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


def _query_type(plan: Plan, name: str, imports: Imports) -> str:
    spec = plan.fields[name]
    fields = "backend.app.schemas.fields"
    if spec.type in {"enum", "uuid", "boolean"}:
        return _python_type(plan, name, imports)
    if spec.type in {"integer", "reference"}:
        imports.add("pydantic", "Field")
        imports.add(fields, "MAX_SAFE_ID")
        low = int(spec.minimum) if spec.minimum is not None else "-MAX_SAFE_ID"
        low = 1 if spec.type == "reference" else low
        high = int(spec.maximum) if spec.maximum is not None else "MAX_SAFE_ID"
        return f"Annotated[int, Field(ge={low}, le={high})]"
    simple = {"decimal": "DecimalText", "date": "IsoDate", "datetime": "UtcDateTime"}
    if spec.type in simple:
        imports.add(fields, simple[spec.type])
        return simple[spec.type]
    imports.add(fields, "single_line")
    return f"Annotated[str, single_line(max_length={spec.max_length or 320})]"


def _list(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    imports.add("sqlalchemy", "select")
    imports.add("backend.app.core.pagination", "ordering", "paginate")
    imports.add("backend.app.schemas.common", "PageParams")
    imports.add(f"backend.app.schemas.{names.entity}", f"{names.cls}Page")
    imports.add("backend.app.models.user", "User")
    scope = ""
    if plan.spec.owner_scoped:
        imports.add("backend.app.core.access", "owned_by")
        scope = f"*owned_by(user, {names.cls}.owner_id), "
    plural = names.plural.replace("_", " ")
    return [
        "",
        "",
        f"async def list_{names.plural}(",
        f"    session: AsyncSession, *, user: User, filters: {names.cls}Filters, page: PageParams",
        f") -> {names.cls}Page:",
        f'    """Return one page of the {plural} `user` may see, and how many match in all."""',
        f"    query = select({names.cls}).where({scope}*_filter_conditions(filters))",
        f"    order = ordering(filters.sort, SORT_COLUMNS, {names.cls}.id)",
        f"    return await paginate(session, query, page=page, order_by=order, "
        f"schema={names.cls}Page)",
    ]


def _helpers(plan: Plan, imports: Imports) -> list[str]:
    if not plan.has("list"):
        return []
    names = plan.names
    imports.add("sqlalchemy", "ColumnElement")
    lines = [
        "",
        "",
        f"def _filter_conditions(filters: {names.cls}Filters) -> list[ColumnElement[bool]]:",
        "    conditions: list[ColumnElement[bool]] = []",
    ]
    for name, spec in plan.filters.items():
        column = f"{names.cls}.{name}"
        if "in" in spec.filter:
            lines += [
                f"    if filters.{name}:",
                f"        conditions.append({column}.in_(filters.{name}))",
            ]
        elif "eq" in spec.filter:
            lines += [
                f"    if filters.{name} is not None:",
                f"        conditions.append({column} == filters.{name})",
            ]
        if "range" in spec.filter:
            lines += [
                f"    if filters.{name}_from is not None:",
                f"        conditions.append({column} >= filters.{name}_from)",
                f"    if filters.{name}_to is not None:",
                f"        conditions.append({column} <= filters.{name}_to)",
            ]
        if "contains" in spec.filter:
            lines += [
                f"    if filters.{name}_contains:",
                f"        conditions.append({column}.icontains(filters.{name}_contains, "
                "autoescape=True))",
            ]
    if plan.search_fields:
        imports.add("sqlalchemy", "or_")
        columns = ", ".join(f"{names.cls}.{name}" for name in plan.search_fields)
        comma = "," if len(plan.search_fields) == 1 else ""
        lines += [
            "    if filters.q:",
            f"        columns = ({columns}{comma})",
            "        conditions.append(or_(*(col.icontains(filters.q, autoescape=True) "
            "for col in columns)))",
        ]
    lines.append("    return conditions")
    return lines
