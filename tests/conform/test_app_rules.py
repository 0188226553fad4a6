"""App rules of the conformance checker, against the live app with a broken router added.

`broken_router.py` is included under /api/v1 next to the real routers, as main.py would.
Each of its lines marked `# expect: <rule>` must be reported with that rule, at that line;
nothing else in it (its conforming handler included) may be reported.
"""

import inspect
import re

import pytest
from fastapi import APIRouter, Depends

from backend.app.core.config import Settings
from backend.app.core.deps import get_current_user
from backend.app.core.errors import UnauthorizedError, error_responses
from backend.app.main import create_app
from backend.app.models import Base
from backend.app.models.lead import Lead
from tests.conform import broken_router
from tools.conform.problems import Problem
from tools.conform.project import Project
from tools.conform.route_rules import check_registration
from tools.conform.routes import api_routes
from tools.conform.runner import ROOT, build_app, check_app, run

# example:lead start
BROKEN = "tests/conform/broken_router.py"
# example:lead end
ORPHAN = '''"""A router nobody includes."""

from fastapi import APIRouter

router = APIRouter(prefix="/orphans")
other = APIRouter(prefix="/strays")


@router.get("")
async def list_orphans() -> None:
    """Unreachable."""


@other.get("")
async def list_strays() -> None:
    """Unreachable too."""
'''


# example:lead start
@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    app = build_app()
    api = APIRouter(prefix="/api/v1", responses=error_responses(500))  # as in main.py
    protected = APIRouter(
        dependencies=[Depends(get_current_user)], responses=error_responses(UnauthorizedError)
    )
    protected.include_router(broken_router.router)
    api.include_router(protected)
    app.include_router(api)
    return sorted(set(check_app(Project(ROOT), app, Base)))


def marked() -> list[tuple[int, str]]:
    """(line, rule) for each rule named in a `# expect: rule [rule...]` comment."""
    lines = (ROOT / BROKEN).read_text().splitlines()
    return [
        (number, rule)
        for number, line in enumerate(lines, start=1)
        if (match := re.search(r"# expect: ([a-z -]+)$", line))
        for rule in match.group(1).split()
    ]


# example:lead end


def test_the_repository_conforms():
    problems = run()
    assert problems == [], "\n".join(str(p) for p in problems)


# example:lead start
def test_each_marked_line_of_the_broken_router_is_reported(problems):
    reported = {(p.line, p.rule) for p in problems if p.file == BROKEN}
    expected = marked()
    assert len(expected) >= 14
    assert [mark for mark in expected if mark not in reported] == []


def test_nothing_else_in_the_broken_router_is_reported(problems):
    expected = set(marked())
    assert [p for p in problems if p.file == BROKEN and (p.line, p.rule) not in expected] == []


def test_the_only_problem_outside_the_broken_router_is_the_missing_index(problems):
    elsewhere = [p for p in problems if p.file != BROKEN]
    assert [(p.file, p.line, p.rule) for p in elsewhere] == [
        ("backend/app/models/lead.py", inspect.getsourcelines(Lead)[1], "list-index"),
    ]
    assert "(source, id)" in elsewhere[0].message
    assert 'Index("ix_leads_source_id", "source", "id")' in elsewhere[0].fix


def test_an_undocumented_error_is_named_with_where_it_is_raised(problems):
    messages = [p.message for p in problems if p.rule == "error-documented"]
    assert len(messages) == 5
    assert any(
        "NotFoundError (404 `not_found`, raised at backend/app/core/access.py:" in m
        for m in messages
    )
    assert any(
        f"LeadHasPaymentsError (409 `lead_has_payments`, raised at {BROKEN}:" in m for m in messages
    )
    through_a_parameter = "(create_idempotent) can raise IdempotencyKeyReusedError (409"
    assert any(through_a_parameter in m for m in messages)
    through_a_dependency_factory = "(read_visible) can raise NotFoundError (404"
    assert any(through_a_dependency_factory in m for m in messages)


def test_a_sort_value_that_is_no_column_is_named(problems):
    [problem] = [p for p in problems if p.rule == "list-sort"]
    assert "'-nickname' is not a column of Lead" in problem.message


# example:lead end


def test_a_router_module_that_main_does_not_include_is_reported(tmp_path):
    (tmp_path / "orphans.py").write_text(ORPHAN)
    project = Project(ROOT)
    routes = list(api_routes(build_app(), project))
    problems = list(check_registration(project, routes, tmp_path))
    assert [(p.file, p.line, p.rule) for p in problems] == [
        ((tmp_path / "orphans.py").as_posix(), 5, "router-registered"),
        ((tmp_path / "orphans.py").as_posix(), 6, "router-registered"),
    ]
    assert "list_orphans unreachable" in problems[0].message
    assert "list_strays unreachable" in problems[1].message


def test_a_router_main_includes_under_a_condition_counts_as_registered(tmp_path):
    settings = Settings(_env_file=None, billing_provider="stripe", stripe_secret_key="sk_test_1")
    routes = list(api_routes(create_app(settings), Project(ROOT)))  # no /dev/checkout routes
    routers = ROOT / "backend/app/routers"
    assert list(check_registration(Project(ROOT), routes, routers)) == []
    without_main = list(check_registration(Project(tmp_path), routes, routers))
    assert [(p.file, p.rule) for p in without_main] == [
        ((routers / "dev_checkout.py").as_posix(), "router-registered")
    ]
