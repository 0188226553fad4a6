"""Rules on documented errors, read from the live OpenAPI and the code each route runs."""

from collections.abc import Callable, Iterator
from typing import Any

from tools.conform.calls import CallGraph, Raised
from tools.conform.problems import Problem
from tools.conform.routes import Route, dependency_calls

ERROR_REF = "#/components/schemas/ErrorResponse"


def check(
    spec: dict[str, Any],
    routes: list[Route],
    graph: CallGraph,
    status_for: Callable[[type[Any]], int],
) -> Iterator[Problem]:
    """Check each documented operation's error responses against what its code raises."""
    for route in routes:
        operation = spec["paths"].get(route.path, {}).get(route.method.lower())
        if not route.include_in_schema or operation is None:
            continue
        responses: dict[str, Any] = operation.get("responses", {})
        yield from _check_error_schema(route, responses)
        raised = graph.errors(route.endpoint)
        for call in dependency_calls(route.dependant):
            raised += graph.errors(call)
        yield from _check_documented(route, responses, raised, status_for)


def _check_error_schema(route: Route, responses: dict[str, Any]) -> Iterator[Problem]:
    if "500" not in responses:
        yield Problem(
            route.file,
            route.line,
            "error-schema",
            f"{route.label} ({route.name}) does not document the 500 every route can answer",
            "include its router under the /api/v1 router, or add error_responses(500)",
        )
    for status, response in sorted(responses.items()):
        if not status.startswith(("4", "5")):
            continue
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema != {"$ref": ERROR_REF}:
            yield Problem(
                route.file,
                route.line,
                "error-schema",
                f"{route.label} ({route.name}): its {status} response is not an ErrorResponse",
                "document errors with responses=error_responses(...) from core/errors.py",
            )


def _check_documented(
    route: Route,
    responses: dict[str, Any],
    raised: list[Raised],
    status_for: Callable[[type[Any]], int],
) -> Iterator[Problem]:
    reported: set[str] = set()
    for found in raised:
        status = str(status_for(found.error))
        code = getattr(found.error, "code", "")
        description = responses.get(status, {}).get("description", "")
        if f"`{code}`" in description or code in reported:
            continue
        reported.add(code)
        name = found.error.__name__
        yield Problem(
            route.file,
            route.line,
            "error-documented",
            f"{route.label} ({route.name}) can raise {name} ({status} `{code}`, raised at "
            f"{found.file}:{found.line}) but its responses do not list it",
            f"add {name} to responses=error_responses(...) on the route decorator",
        )
