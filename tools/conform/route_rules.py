"""Rules on routers and handlers: registered, async, typed, a response model, the right status."""

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI, Response

from tools.conform.problems import Problem
from tools.conform.project import FunctionNode, Project, decorator_call, keyword
from tools.conform.routes import Route, api_routes

HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace", "api_route"}
UNTYPED = {"Any", "dict", "Dict", "list", "List", "object"}  # bare, without type arguments
# POSTs that create nothing although their path is a collection, and why (by handler name;
# see `_creates` for the POSTs that are never creates).
NOT_CREATE_POSTS = {
    "login": "the OAuth2 token endpoint answers 200 (RFC 6749, section 5.1)",
}
WEBHOOK_SEGMENT = "webhooks"
STATUS_NAMES = {200: "OK", 201: "CREATED", 204: "NO_CONTENT"}


def check(project: Project, app: FastAPI) -> Iterator[Problem]:
    """Check router registration, then every handler of the app."""
    routes = list(api_routes(app, project))
    yield from check_registration(project, routes, project.app_dir / "routers")
    seen: set[object] = set()
    for route in routes:
        if route.node is not None and route.endpoint not in seen:
            seen.add(route.endpoint)
            yield from _check_handler(route, route.node)
        yield from _check_response_model(route)
        yield from _check_status(route)


def check_registration(project: Project, routes: list[Route], routers: Path) -> Iterator[Problem]:
    """Every router defined under `routers/` has its handlers among the app's routes.

    A router main.py includes only under a condition counts as registered even when the
    app at hand was built without it.
    """
    registered = {
        (Path(route.endpoint.__code__.co_filename).resolve(), route.endpoint.__name__)
        for route in routes
        if hasattr(route.endpoint, "__code__")
    }
    conditional = _conditionally_included(project.app_dir / "main.py")
    for source in project.python_files(routers):
        assigned = _router_assignments(source.tree)
        handlers: dict[str, list[FunctionNode]] = {}
        for node in source.tree.body:
            if not isinstance(node, FunctionNode):
                continue
            decorator = decorator_call(node, HTTP_METHODS)
            if decorator and isinstance(decorator.func, ast.Attribute):
                owner = ast.unparse(decorator.func.value)  # the router: `router`
                handlers.setdefault(owner, []).append(node)
        for owner, nodes in handlers.items():
            missing = [n.name for n in nodes if (source.path, n.name) not in registered]
            if missing and f"{source.path.stem}.{owner}" not in conditional:
                yield Problem(
                    source.rel,
                    assigned.get(owner, nodes[0].lineno),
                    "router-registered",
                    f"`{owner}` is not included in the app: {', '.join(missing)} unreachable",
                    f"import the module in backend/app/main.py and include it in "
                    f"build_api_router: include_protected(api, {owner}) unless it is public",
                )


def _conditionally_included(main: Path) -> set[str]:
    """`module.router` names main.py includes under an `if` (e.g. only with a fake provider).

    Their routes are absent from an app built with other settings, yet they are registered.
    """
    if not main.is_file():
        return set()
    found = set()
    for statement in ast.walk(ast.parse(main.read_text(encoding="utf-8"))):
        if isinstance(statement, ast.If):
            for node in ast.walk(statement):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "include_router"
                    and node.args
                ):
                    found.add(ast.unparse(node.args[0]))
    return found


def _router_assignments(tree: ast.Module) -> dict[str, int]:
    """Module-level `name = APIRouter(...)` assignments, by name."""
    found = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func).endswith("APIRouter")
        ):
            for target in node.targets:
                found[ast.unparse(target)] = node.lineno
    return found


def _check_handler(route: Route, node: FunctionNode) -> Iterator[Problem]:
    file = route.file
    if not isinstance(node, ast.AsyncFunctionDef):
        yield Problem(
            file,
            node.lineno,
            "handler-async",
            f"handler {node.name} ({route.label}) is a plain `def`: FastAPI runs it in a thread",
            "make it `async def` and await the database; offload CPU work to a thread pool",
        )
    arguments = node.args
    params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    params += [arg for arg in (arguments.vararg, arguments.kwarg) if arg]
    for param in params:
        if param.annotation is None or _untyped(param.annotation):
            yield _typed_problem(file, param.lineno, node.name, f"parameter `{param.arg}`")
    if node.returns is None or _untyped(node.returns):
        line = node.returns.lineno if node.returns else node.lineno
        yield _typed_problem(file, line, node.name, "return")


def _untyped(annotation: ast.expr) -> bool:
    """`Any` anywhere in the annotation, or a bare `dict`/`list`/`object` as the whole of it."""
    for part in ast.walk(annotation):
        if _last_name(part) == "Any":
            return True
    return _last_name(annotation) in UNTYPED


def _last_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def _typed_problem(file: str, line: int, handler: str, what: str) -> Problem:
    return Problem(
        file,
        line,
        "handler-typed",
        f"handler {handler}: {what} has no precise type annotation",
        "annotate it with a concrete type (a pydantic model, an Annotated dependency alias)",
    )


def _check_response_model(route: Route) -> Iterator[Problem]:
    decorator = decorator_call(route.node, HTTP_METHODS) if route.node else None
    if decorator is None:  # added without a decorator: trust what FastAPI recorded
        declared = route.response_model is not None
    else:
        declared = any(keyword(decorator, kw) for kw in ("response_model", "response_class"))
    if declared or route.status_code == 204 or _returns_response(route):
        return
    yield Problem(
        route.file,
        route.line,
        "handler-response-model",
        f"{route.label} ({route.name}) declares no response_model",
        "add response_model=<Entity>Read (a pydantic model), or response_class= for non-JSON",
    )


def _returns_response(route: Route) -> bool:
    """Whether the handler is annotated to return a Response subclass (HTML, a redirect)."""
    try:
        returned = inspect.signature(route.endpoint, eval_str=True).return_annotation
    except (NameError, TypeError, SyntaxError):
        return False
    return inspect.isclass(returned) and issubclass(returned, Response)


def _check_status(route: Route) -> Iterator[Problem]:
    status = route.status_code or 200
    expected = {"GET": 200, "PUT": 200, "PATCH": 200, "DELETE": 204}.get(route.method)
    if route.method == "POST" and _creates(route):
        expected = 201
    if expected is None or status == expected:
        return
    what = "a create" if route.method == "POST" else route.method
    fix = f"set status_code=status.HTTP_{expected}_{STATUS_NAMES[expected]} on the decorator"
    if expected == 201:
        fix += "; a POST that creates nothing goes in NOT_CREATE_POSTS, with why"
    yield Problem(
        route.file,
        route.line,
        "handler-status",
        f"{route.label} ({route.name}) answers {status}; {what} answers {expected}",
        fix,
    )


def _creates(route: Route) -> bool:
    """A POST creates unless it is a webhook, an action on a member, or allowlisted.

    A webhook lives under a `/webhooks/` segment (the provider expects a plain 2xx); a POST
    to a path ending in a parameter (`/checkout/{id}/{action}`) acts on an existing thing.
    """
    segments = [part for part in route.path.split("/") if part]
    if WEBHOOK_SEGMENT in segments or (segments and segments[-1].startswith("{")):
        return False
    return route.name not in NOT_CREATE_POSTS
