"""Run every rule over a checkout: the source files, then the live app and its OpenAPI."""

from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.orm import DeclarativeBase

from backend.app.core.config import Settings
from backend.app.core.errors import AppError, status_for
from backend.app.main import create_app
from backend.app.models import Base
from tools.conform import (
    docstring_rules,
    error_rules,
    list_rules,
    route_rules,
    settings_rules,
    source_rules,
)
from tools.conform.calls import APP_PACKAGE, CallGraph
from tools.conform.problems import Problem
from tools.conform.project import Project
from tools.conform.routes import api_routes

ROOT = Path(__file__).resolve().parents[2]


def build_app() -> FastAPI:
    """The app as `make run` would build it with default settings (no .env file read)."""
    return create_app(Settings(_env_file=None))


def run(root: Path = ROOT, app: FastAPI | None = None) -> list[Problem]:
    """Every problem in the checkout at `root`, sorted by file and line."""
    project = Project(root)
    found = [*check_sources(project), *check_app(project, app or build_app(), Base)]
    return sorted(set(found))


def check_sources(project: Project) -> Iterator[Problem]:
    """The rules that read only files: no import of the app needed."""
    yield from source_rules.check(project)
    yield from docstring_rules.check(project)
    yield from settings_rules.check(project, Settings)


def check_app(project: Project, app: FastAPI, base: type[DeclarativeBase]) -> Iterator[Problem]:
    """The rules that read the live app: its routes, its OpenAPI and its models."""
    routes = list(api_routes(app, project))
    spec = app.openapi()
    handler_modules = {route.endpoint.__module__ for route in routes}
    graph = CallGraph(project, AppError, (APP_PACKAGE, *sorted(handler_modules)))
    models = [mapper.class_ for mapper in base.registry.mappers]
    yield from route_rules.check(project, app)
    yield from error_rules.check(spec, routes, graph, status_for)
    yield from list_rules.ListChecker(project, spec, graph, models).check(routes)
