"""Shapes shared by every entity: strict input base, typed field aliases, the list page."""

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict

from backend.app.schemas.fields import MAX_OFFSET

ItemT = TypeVar("ItemT", bound=BaseModel)

MAX_PAGE_LIMIT = 100
DEFAULT_PAGE_LIMIT = 50


class InputModel(BaseModel):
    """Base of every request body: unknown fields are rejected with 422."""

    model_config = ConfigDict(extra="forbid")


class OutputModel(BaseModel):
    """Base of every response body: built from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


@dataclass(frozen=True)
class PageParams:
    """`limit` and `offset` of a list request, validated the same way on every list."""

    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT, description="Page size, 1-100.")] = (
        DEFAULT_PAGE_LIMIT
    )
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip, 0 to 2^63-1.")] = 0


async def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_LIMIT, description="Page size, 1-100.")
    ] = DEFAULT_PAGE_LIMIT,
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip, 0 to 2^63-1.")
    ] = 0,
) -> PageParams:
    """Read `limit` and `offset` from the query string.

    An `async def` dependency, because FastAPI runs a class dependency (`Depends()` on
    `PageParams` itself) in a worker thread, which costs a thread hop on every list call.
    """
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[ItemT]):
    """The envelope of every list response; subclass it per entity (`class LeadPage(...)`)."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int
