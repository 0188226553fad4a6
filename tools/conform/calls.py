"""Follow a handler into the app's own code: the errors it can raise and the ORDER BYs it runs.

Names in the source are resolved against the live modules (a function's `__globals__`), so
`crud_leads.get_lead(...)` leads to `backend.app.crud.leads.get_lead` whatever the import
style; a parameter's methods resolve through its annotated class, `self` through the method's
class. Calls that cannot be resolved statically (a variable, a Protocol's stub) are not
followed: the graph is an under-approximation, so it finds no error that is not there.
An error raised inside a `try` whose handler catches it does not leave the function.
"""

import ast
import builtins
import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FunctionType

from tools.conform.project import FunctionNode, Project, Source

APP_PACKAGE = "backend.app"
ORDER_MODIFIERS = {"asc", "desc", "nulls_first", "nulls_last", "nullsfirst", "nullslast"}


@dataclass(frozen=True)
class Raised:
    """An error class raised at a place in the source."""

    error: type[BaseException]
    file: str
    line: int


@dataclass(frozen=True)
class OrderBy:
    """An ORDER BY the code states: the terms of `.order_by(...)` or of an `order_by=` argument.

    `terms` is None when they are not written there (forwarded as `*order_by`, or built by
    a call such as `ordering(...)`).
    """

    terms: list[ast.expr] | None
    source: Source
    line: int
    namespace: dict[str, object]


@dataclass
class _Facts:
    raised: list[Raised] = field(default_factory=list)
    calls: list[tuple[FunctionType, tuple[type[BaseException], ...]]] = field(default_factory=list)
    order_bys: list[OrderBy] = field(default_factory=list)


def resolve(expr: ast.expr, namespace: dict[str, object]) -> object:
    """Return the object a name or dotted name denotes in `namespace`, or None."""
    if isinstance(expr, ast.Name):
        return namespace.get(expr.id, getattr(builtins, expr.id, None))
    if isinstance(expr, ast.Attribute):
        base = resolve(expr.value, namespace)
        if inspect.ismodule(base):
            return getattr(base, expr.attr, None)
        if base is not None:  # a class, or an instance: read without running properties
            return inspect.getattr_static(base, expr.attr, None)
    return None


def _local_lists(node: FunctionNode) -> dict[str, list[ast.expr]]:
    """Local variables assigned a list or tuple literal (`order = [A.x.desc(), A.id]`)."""
    found = {}
    for statement in ast.walk(node):
        target = value = None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign):
            target, value = statement.target, statement.value
        if isinstance(target, ast.Name) and isinstance(value, ast.List | ast.Tuple):
            found[target.id] = list(value.elts)
    return found


def _closure(func: FunctionType) -> dict[str, object]:
    """The variables a nested function closes over (a dependency made by a factory)."""
    found: dict[str, object] = {}
    for name, cell in zip(func.__code__.co_freevars, func.__closure__ or (), strict=False):
        try:
            found[name] = cell.cell_contents
        except ValueError:  # an empty cell: the variable is not bound yet
            continue
    return found


def _local_types(func: FunctionType) -> dict[str, object]:
    """The classes of a function's parameters (and of `self`/`cls`), by parameter name.

    So `idempotency.run(...)` on a parameter `idempotency: Idempotency` (an Annotated
    dependency) resolves to `IdempotencyHandle.run`, and `self._send()` to the method.
    """
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except (NameError, TypeError, AttributeError):
        hints = {}
    found: dict[str, object] = {}
    for name, hint in hints.items():
        if typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
        if inspect.isclass(hint) and name != "return":
            found[name] = hint
    owner = func.__globals__.get(func.__qualname__.split(".")[0])
    if "." in func.__qualname__ and inspect.isclass(owner):
        found.update(self=owner, cls=owner)
    return found


def plain_function(obj: object) -> FunctionType | None:
    """Return the Python function behind a function, method or callable instance."""
    if inspect.ismethod(obj) or isinstance(obj, classmethod | staticmethod):
        obj = obj.__func__
    if inspect.isclass(obj):
        return None
    if callable(obj) and not inspect.isroutine(obj):
        obj = type(obj).__call__  # a callable instance (a dependency class): its __call__
    obj = inspect.unwrap(obj) if callable(obj) else obj
    return obj if isinstance(obj, FunctionType) else None


def app_function(obj: object, packages: tuple[str, ...] = (APP_PACKAGE,)) -> FunctionType | None:
    """Return the function behind `obj` when its module is in `packages`, else None."""
    func = plain_function(obj)
    return func if func and func.__module__.startswith(packages) else None


class CallGraph:
    """What a function and everything it calls in the app can raise, and the ORDER BYs."""

    def __init__(
        self,
        project: Project,
        error_base: type[BaseException],
        packages: tuple[str, ...] = (APP_PACKAGE,),
    ) -> None:
        self.project = project
        self.error_base = error_base
        self.packages = packages  # the code followed: the app's, and its handlers' modules
        self._facts: dict[FunctionType, _Facts] = {}

    def reachable(self, start: Callable[..., object]) -> Iterator[FunctionType]:
        """Yield `start` and every function of the app it may call."""
        first = plain_function(start)
        stack = [first] if first else []
        seen: set[FunctionType] = set()
        while stack:
            func = stack.pop()
            if func in seen:
                continue
            seen.add(func)
            yield func
            stack.extend(callee for callee, _ in self.facts(func).calls)

    def errors(self, start: Callable[..., object]) -> list[Raised]:
        """Every app error `start` may raise to its caller, through any depth of calls."""
        first = plain_function(start)
        return self._errors(first, set()) if first else []

    def order_bys(self, start: Callable[..., object]) -> list[OrderBy]:
        """Every ORDER BY stated in `start` and the app functions it may call."""
        return [order for func in self.reachable(start) for order in self.facts(func).order_bys]

    def facts(self, func: FunctionType) -> _Facts:
        """Parse `func` once: its raises, its calls into the app, its ORDER BYs."""
        if func not in self._facts:
            found = self.project.function(func)
            facts = _Facts()
            if found:
                source, node = found
                namespace = {**func.__globals__, **_closure(func), **_local_types(func)}
                _Visitor(facts, source, namespace, self, _local_lists(node)).visit_body(node)
            self._facts[func] = facts
        return self._facts[func]

    def _errors(self, func: FunctionType, active: set[FunctionType]) -> list[Raised]:
        if func in active:  # recursion: its errors are counted where it was entered
            return []
        active.add(func)
        facts = self.facts(func)
        found = list(facts.raised)
        for callee, caught in facts.calls:
            found += [r for r in self._errors(callee, active) if not _caught(r.error, caught)]
        active.discard(func)
        return found


def _caught(error: type[BaseException], caught: tuple[type[BaseException], ...]) -> bool:
    return any(issubclass(error, handler) for handler in caught)


class _Visitor(ast.NodeVisitor):
    """Collect raises, resolvable calls and ORDER BYs, tracking the enclosing `try`s."""

    def __init__(
        self,
        facts: _Facts,
        source: Source,
        namespace: dict[str, object],
        graph: CallGraph,
        local_lists: dict[str, list[ast.expr]],
    ) -> None:
        self.facts = facts
        self.source = source
        self.namespace = namespace
        self.local_lists = local_lists
        self.error_base = graph.error_base
        self.packages = graph.packages
        self.caught: tuple[type[BaseException], ...] = ()

    def visit_body(self, node: FunctionNode) -> None:
        """Visit the statements of a function (and of the functions nested in it)."""
        for statement in node.body:
            self.visit(statement)

    def visit_Try(self, node: ast.Try) -> None:
        """Errors the handlers catch do not leave the `try` body."""
        outer = self.caught
        self.caught = outer + self._handled(node.handlers)
        for statement in node.body:
            self.visit(statement)
        self.caught = outer
        for part in (node.handlers, node.orelse, node.finalbody):
            for child in part:
                self.visit(child)

    def visit_Raise(self, node: ast.Raise) -> None:
        """Record `raise SomeError(...)` when SomeError is one of the app's errors."""
        if node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            error = resolve(target, self.namespace)
            if (
                inspect.isclass(error)
                and issubclass(error, self.error_base)
                and not _caught(error, self.caught)
            ):
                self.facts.raised.append(Raised(error, self.source.rel, node.lineno))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        """Follow calls (and functions passed as arguments) into the app's code."""
        for expr in [node.func, *node.args]:
            func = app_function(resolve(expr, self.namespace), self.packages)
            if func is not None:
                self.facts.calls.append((func, self.caught))
        if isinstance(node.func, ast.Attribute) and node.func.attr == "order_by":
            first = node.args[0] if len(node.args) == 1 else None
            if isinstance(first, ast.Starred):  # `.order_by(*order)`: a list made elsewhere?
                self._order(self._listed(first.value), node.func.end_lineno or node.lineno)
            else:
                self._order(list(node.args), node.func.end_lineno or node.lineno)
        for argument in node.keywords:
            if argument.arg == "order_by":  # a paging helper's `order_by=[...]`
                self._order(self._listed(argument.value), argument.value.lineno)
        self.generic_visit(node)

    def _order(self, terms: list[ast.expr] | None, line: int) -> None:
        self.facts.order_bys.append(OrderBy(terms, self.source, line, self.namespace))

    def _listed(self, expr: ast.expr) -> list[ast.expr] | None:
        """The items of a list written here, or of a local variable assigned one."""
        if isinstance(expr, ast.List | ast.Tuple):
            return list(expr.elts)
        if isinstance(expr, ast.Name):
            return self.local_lists.get(expr.id)
        return None

    def _handled(self, handlers: list[ast.ExceptHandler]) -> tuple[type[BaseException], ...]:
        types: list[type[BaseException]] = []
        for handler in handlers:
            if handler.type is None:
                types.append(BaseException)
                continue
            names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            for name in names:
                resolved = resolve(name, self.namespace)
                if inspect.isclass(resolved) and issubclass(resolved, BaseException):
                    types.append(resolved)
        return tuple(types)


def order_column(expr: ast.expr, namespace: dict[str, object]) -> tuple[type, str] | None:
    """Return (model class, attribute) for `Model.col`, `Model.col.desc()`, `desc(Model.col)`."""
    while isinstance(expr, ast.Call):
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr in ORDER_MODIFIERS and not expr.args:
            expr = func.value
        elif _name_of(func) in ORDER_MODIFIERS and len(expr.args) == 1:
            expr = expr.args[0]
        else:
            return None
    if isinstance(expr, ast.Attribute):
        model = resolve(expr.value, namespace)
        if inspect.isclass(model) and hasattr(model, "__table__"):
            return model, expr.attr
    return None


def _name_of(expr: ast.expr) -> str:
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return expr.id if isinstance(expr, ast.Name) else ""
