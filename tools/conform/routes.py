"""The app's routes as mounted (prefixes and router-level dependencies applied)."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from tools.conform.project import FunctionNode, Project, Source


@dataclass(frozen=True)
class Route:
    """One method of one mounted API route, and where its handler is written."""

    path: str
    method: str
    name: str
    endpoint: Callable[..., object]
    status_code: int | None
    response_model: object
    include_in_schema: bool
    dependant: Dependant
    source: Source | None
    node: FunctionNode | None

    @property
    def file(self) -> str:
        """The handler's file, relative to the repository."""
        code = getattr(self.endpoint, "__code__", None)
        return self.source.rel if self.source else getattr(code, "co_filename", "?")

    @property
    def line(self) -> int:
        """The line of the handler's route decorator (else its `def`)."""
        if self.node is None:
            return 1
        return self.node.decorator_list[0].lineno if self.node.decorator_list else self.node.lineno

    @property
    def label(self) -> str:
        """`METHOD /path` for messages."""
        return f"{self.method} {self.path}"


def api_routes(app: FastAPI, project: Project) -> Iterator[Route]:
    """Yield every API route of `app`, once per method, with its handler's source."""
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        endpoint = context.endpoint
        assert endpoint is not None  # an APIRoute always has one
        found = project.function(endpoint)
        for method in sorted(context.methods or ()):
            yield Route(
                path=context.path_format or "",
                method=method,
                name=context.name or endpoint.__name__,
                endpoint=endpoint,
                status_code=context.status_code,
                response_model=context.response_model,
                include_in_schema=bool(context.include_in_schema),
                dependant=context.dependant,
                source=found[0] if found else None,
                node=found[1] if found else None,
            )


def dependency_calls(dependant: Dependant) -> Iterator[Callable[..., object]]:
    """Yield the callable of every dependency of a route, however deeply nested."""
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from dependency_calls(sub)
