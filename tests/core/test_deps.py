"""The protected router's guarantee: every route reads its user, so deactivation applies at once."""

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends

from backend.app.core.access import visible_record
from backend.app.core.deps import AdminUser, CurrentUser, check_routes_load_user
from backend.app.models.lead import Lead


def test_a_protected_route_that_never_reads_its_user_refuses_to_start() -> None:
    router = APIRouter()

    @router.get("/things")
    async def list_things_of_anyone() -> list[str]:
        return []

    with pytest.raises(RuntimeError, match="list_things_of_anyone"):
        check_routes_load_user(router)


def test_routes_that_read_the_user_directly_or_through_a_record_pass() -> None:
    router = APIRouter()

    @router.get("/mine")
    async def mine(user: CurrentUser) -> int:
        return user.id

    @router.get("/all")
    async def everything(admin: AdminUser) -> int:
        return admin.id

    # example:lead start
    visible = Annotated[Lead, Depends(visible_record(Lead, path_param="lead_id"))]

    @router.get("/leads/{lead_id}")
    async def one(lead: visible) -> int:
        return lead.id

    # example:lead end
    check_routes_load_user(router)
