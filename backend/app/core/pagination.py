"""Paging and sorting for every list endpoint: one page envelope from one query.

A crud `list_*` function builds the query of what the caller may see (its filters, its
owner scoping) and hands it over::

    query = select(Lead).where(*owned_by(user, Lead.owner_id), *filters)
    return await paginate(session, query, page=page, order_by=ordering(sort, SORTS, Lead.id),
                          schema=LeadPage)

`paginate` counts the matching rows and reads one page of them in a stable order, then
validates them straight into the page schema (`items`, `total`, `limit`, `offset`). A
`select(Model)` is read as plain rows of the model's column attributes (its
`column_property`s included), not as ORM objects, and each row is handed to the schema as a
dict: the schema reads the same names, and a dict costs a fraction of an object (no identity
map, no instance state) and validates about four times faster than a row read by attribute.

The order must end with the id (`ordering` adds it), so paging with limit/offset over an
unchanged table returns every row exactly once, even where the sort column has ties.
"""

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, UnaryExpression, func, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Mapper

from backend.app.schemas.common import Page, PageParams

PageT = TypeVar("PageT", bound=Page[Any])


def ordering(
    sort: str,
    columns: Mapping[str, InstrumentedAttribute[Any]],
    tiebreak: InstrumentedAttribute[Any],
) -> list[UnaryExpression[Any]]:
    """Return the ORDER BY of a sort key like `name` or `-created_at`, ending with the id.

    Args:
        sort: a key of `columns`, with a leading `-` for descending order.
        columns: the sortable columns by key.
        tiebreak: the primary key, sorted in the same direction to break ties.

    Returns:
        The ordering for `paginate(..., order_by=...)`.
    """
    column = columns[sort.removeprefix("-")]
    if sort.startswith("-"):
        return [column.desc(), tiebreak.desc()]
    return [column.asc(), tiebreak.asc()]


async def paginate(
    session: AsyncSession,
    query: Select[Any],
    *,
    page: PageParams,
    order_by: Sequence[ColumnElement[Any]],
    schema: type[PageT],
) -> PageT:
    """Return one page of the rows `query` selects, and how many it selects in all.

    Args:
        session: the request's session.
        query: a `select(Model)` with the caller's filters and scoping, without ORDER BY.
        page: `limit` and `offset` of the request.
        order_by: a stable order that ends with the primary key (see `ordering`).
        schema: the page model, e.g. `LeadPage`; rows are validated into its item type.

    Returns:
        The page, ready to return from the handler.
    """
    page_query = _as_column_rows(query).order_by(*order_by).limit(page.limit).offset(page.offset)
    result = await session.execute(page_query)
    keys = list(result.keys())
    rows = [dict(zip(keys, row, strict=True)) for row in result]
    if (rows and len(rows) < page.limit) or (not rows and page.offset == 0):
        total = page.offset + len(rows)  # the last page: no need to count
    else:
        count = query.with_only_columns(func.count(), maintain_column_froms=True)
        total = await session.scalar(count.order_by(None)) or 0
    return schema.model_validate(
        {"items": rows, "total": total, "limit": page.limit, "offset": page.offset},
        from_attributes=True,
    )


_COLUMNS: dict[Mapper[Any], list[InstrumentedAttribute[Any]]] = {}


def _as_column_rows(query: Select[Any]) -> Select[Any]:
    """Select the column attributes of a `select(Model)`'s model instead of the model."""
    descriptions = query.column_descriptions
    if len(descriptions) != 1 or descriptions[0]["expr"] is not descriptions[0]["entity"]:
        return query  # not one whole entity: read it as it is
    mapper: Mapper[Any] = inspect(descriptions[0]["entity"])
    columns = _COLUMNS.get(mapper)
    if columns is None:
        columns = [getattr(mapper.class_, attr.key) for attr in mapper.column_attrs]
        _COLUMNS[mapper] = columns
    return query.with_only_columns(*columns, maintain_column_froms=True)
