"""Render `backend/app/routers/<plural>.py`: thin handlers over the entity's crud module."""

from tools.generate.plan import Plan
from tools.generate.render_crud import filter_parameters
from tools.generate.render_schemas import imports_placeholder
from tools.generate.source import Imports, docstring, quote

# Query parameter names that would shadow a handler's own parameters or imports.
_TAKEN = {"status", "page", "session", "user", "sort", "q", "response", "body", "settings"}


def render_router(plan: Plan) -> str:
    """Return the source of the entity's router module."""
    names = plan.names
    imports = Imports()
    imports.add("fastapi", "APIRouter")
    imports.add("backend.app.crud", f"{names.plural} as crud_{names.plural}")
    lines = [
        docstring(f"{names.cls} routes: thin handlers over `crud/{names.plural}.py`."),
        "",
        *imports_placeholder(),
        f'router = APIRouter(prefix="{names.url}", tags=[{quote(names.plural)}])',
        "",
    ]
    if plan.search_fields or any("contains" in f.filter for f in plan.filters.values()):
        imports.add("typing", "Annotated")
        imports.add("backend.app.schemas.fields", "single_line")
        lines.append("SearchText = Annotated[str, single_line(max_length=200)]")
    if plan.has("read") or plan.has("update") or plan.has("delete"):
        imports.add("typing", "Annotated")
        imports.add("fastapi", "Depends")
        imports.add("backend.app.core.access", "visible_record")
        imports.add(f"backend.app.models.{names.entity}", names.cls)
        lines.append(
            f"Visible{names.cls} = Annotated[{names.cls}, Depends(visible_record("
            f'{names.cls}, path_param="{names.id_param}"))]'
        )
    for operation, render in (
        ("create", _create),
        ("list", _list),
        ("read", _read),
        ("update", _update),
        ("delete", _delete),
    ):
        if plan.has(operation):
            lines += render(plan, imports)
    source = "\n".join(lines) + "\n"
    return source.replace("\n".join(imports_placeholder()), "\n".join(imports.render()))


def _settings(plan: Plan, imports: Imports) -> tuple[str, str]:
    """The handler parameter and crud argument a phone field needs (its default region)."""
    if not plan.phone_fields:
        return "", ""
    imports.add("backend.app.core.deps", "SettingsDep")
    return ", settings: SettingsDep", ", phone_region=settings.default_phone_region"


def _create(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    entity = names.entity
    imports.add("fastapi", "Response", "status")
    imports.add("backend.app.core.deps", "CurrentUser", "SessionDep")
    imports.add(f"backend.app.schemas.{entity}", f"{names.cls}Create", f"{names.cls}Read")
    settings, region = _settings(plan, imports)
    whose = " owned by the current user" if plan.spec.owner_scoped else ""
    references = any(spec.type == "reference" for spec in plan.input_fields.values())
    owner = ", owner=user" if plan.spec.owner_scoped or references else ""
    errors = _write_errors(plan, imports, update=False)
    return [
        "",
        "",
        "@router.post(",
        f'    "", response_model={names.cls}Read, status_code=status.HTTP_201_CREATED{errors}',
        ")",
        f"async def create_{entity}(",
        f"    body: {names.cls}Create, user: CurrentUser, session: SessionDep{settings}, "
        "response: Response",
        f") -> {names.cls}Read:",
        f'    """Create a {names.label}{whose}; `Location` points at it."""',
        f"    {entity} = await crud_{names.plural}.create_{entity}(",
        f"        session, data=body{owner}{region}",
        "    )",
        f'    response.headers["Location"] = f"/api/v1{names.url}/{{{entity}.id}}"',
        f"    return {names.cls}Read.model_validate({entity})",
    ]


def _list(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    imports.add("fastapi", "Query")
    imports.add("typing", "Annotated")
    imports.add("backend.app.core.deps", "CurrentUser", "SessionDep")
    imports.add("backend.app.schemas.common", "PageDep")
    imports.add(f"backend.app.crud.{names.plural}", f"{names.cls}Filters")
    imports.add(f"backend.app.schemas.{names.entity}", f"{names.cls}Page", f"{names.cls}Sort")
    params, arguments = [], []
    for attribute, _, kind in filter_parameters(plan, Imports(), imports):
        param = f"{attribute}_" if attribute in _TAKEN else attribute
        alias = f'alias="{attribute}", ' if param != attribute else ""
        description = _filter_description(attribute, kind)
        params.append(
            f"    {param}: Annotated[{kind} | None, Query({alias}description={quote(description)})]"
            " = None,"
        )
        arguments.append(f"{attribute}={param}")
    if plan.search_fields:
        searched = ", ".join(plan.search_fields)
        description = f"Case-insensitive literal substring of {searched}."
        params.append(
            f"    q: Annotated[SearchText | None, Query(description={quote(description)})] = None,"
        )
        arguments.append("q=q")
    default = plan.spec.default_sort
    member = default.lstrip("-").upper() + ("_DESC" if default.startswith("-") else "")
    params.append(
        f'    sort: Annotated[{names.cls}Sort, Query(description="Sort key; `-` = descending.")] '
        f"= {names.cls}Sort.{member},"
    )
    arguments.append("sort=sort")
    whose = " the user may see (admins: all)" if plan.spec.owner_scoped else ""
    return [
        "",
        "",
        f'@router.get("", response_model={names.cls}Page)',
        f"async def list_{names.plural}(",
        "    user: CurrentUser,",
        "    session: SessionDep,",
        "    page: PageDep,",
        *params,
        f") -> {names.cls}Page:",
        f'    """Return a page of the {names.plural.replace("_", " ")}{whose}."""',
        f"    filters = {names.cls}Filters({', '.join(arguments)})",
        f"    return await crud_{names.plural}.list_{names.plural}(",
        "        session, user=user, filters=filters, page=page",
        "    )",
    ]


def _write_errors(plan: Plan, imports: Imports, *, update: bool) -> str:
    """`, responses=error_responses(...)` of a create or update, or nothing."""
    errors = ["NotFoundError"] if update else []
    if any(spec.type == "reference" for spec in plan.input_fields.values()) and not update:
        errors.append("NotFoundError")
    if any(spec.unique for spec in plan.input_fields.values()):
        errors.append("ConflictError")
    if not errors:
        return ""
    imports.add("backend.app.core.errors", *errors, "error_responses")
    return f", responses=error_responses({', '.join(errors)})"


def _filter_description(attribute: str, kind: str) -> str:
    if kind.startswith("list["):
        return "Repeat to match any of them."
    if attribute.endswith("_from"):
        return "At least this (inclusive)."
    if attribute.endswith("_to"):
        return "At most this (inclusive)."
    if attribute.endswith("_contains"):
        return "Case-insensitive literal substring."
    return "Exactly this."


def _read(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    imports.add("backend.app.core.errors", "NotFoundError", "error_responses")
    imports.add(f"backend.app.schemas.{names.entity}", f"{names.cls}Read")
    whose = (
        f" (404 for a missing {names.label} or another member's)" if plan.spec.owner_scoped else ""
    )
    return [
        "",
        "",
        f'@router.get("/{{{names.id_param}}}", response_model={names.cls}Read, '
        "responses=error_responses(NotFoundError))",
        f"async def read_{names.entity}({names.entity}: Visible{names.cls}) -> {names.cls}Read:",
        f'    """Return one {names.label}{whose}."""',
        f"    return {names.cls}Read.model_validate({names.entity})",
    ]


def _update(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    entity = names.entity
    imports.add("backend.app.core.deps", "SessionDep")
    imports.add("backend.app.core.errors", "NotFoundError", "error_responses")
    imports.add(f"backend.app.schemas.{entity}", f"{names.cls}Update", f"{names.cls}Read")
    settings, region = _settings(plan, imports)
    user_param, user_arg = "", ""
    if any(spec.type == "reference" for spec in plan.input_fields.values()):
        imports.add("backend.app.core.deps", "CurrentUser")
        user_param, user_arg = ", user: CurrentUser", ", user=user"
    raises = []
    if plan.phone_fields:
        raises = [
            "",
            "    Raises:",
            "        InvalidFieldError: a phone is not a valid number (422).",
        ]
    return [
        "",
        "",
        f'@router.patch("/{{{names.id_param}}}", response_model={names.cls}Read'
        f"{_write_errors(plan, imports, update=True)})",
        f"async def update_{entity}(",
        f"    {entity}: Visible{names.cls}, body: {names.cls}Update, session: SessionDep"
        f"{user_param}{settings}",
        f") -> {names.cls}Read:",
        f'    """Change some fields of a {names.label}; `null` clears an optional field.',
        *raises,
        '    """',
        f"    {entity} = await crud_{names.plural}.update_{entity}(",
        f"        session, {entity}={entity}, data=body{user_arg}{region}",
        "    )",
        f"    return {names.cls}Read.model_validate({entity})",
    ]


def _delete(plan: Plan, imports: Imports) -> list[str]:
    names = plan.names
    entity = names.entity
    imports.add("fastapi", "status")
    imports.add("backend.app.core.deps", "SessionDep")
    imports.add("backend.app.core.errors", "NotFoundError", "error_responses")
    errors = ["NotFoundError"]
    if plan.restricted_by:
        imports.add("backend.app.core.errors", "ConflictError")
        errors.append("ConflictError")
    what = f"Delete a {names.label}"
    if plan.spec.texts:
        what += " and its texts (pending ones are never sent)"
    docs = [f'    """{what}."""']
    if plan.spec.payments:
        error = plan.spec.payments.error
        imports.add("backend.app.core.errors", error)
        errors.append(error)
        docs = [
            f'    """{what}.',
            "",
            "    Raises:",
            f"        {error}: the {names.label} has payments (409).",
            '    """',
        ]
    return [
        "",
        "",
        "@router.delete(",
        f'    "/{{{names.id_param}}}",',
        "    status_code=status.HTTP_204_NO_CONTENT,",
        f"    responses=error_responses({', '.join(errors)}),",
        ")",
        f"async def delete_{entity}({entity}: Visible{names.cls}, session: SessionDep) -> None:",
        *docs,
        f"    await crud_{names.plural}.delete_{entity}(session, {entity}={entity})",
    ]
