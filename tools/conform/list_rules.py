"""Rules on list endpoints: bounded paging, sort keys that are columns, stable indexed order.

A list is an operation whose success body has the page shape (`items`, `total`, `limit`,
`offset`). Its model is the mapped class named like its item schema without `Read`
(`LeadRead` -> `Lead`). Orders are read from the `.order_by(...)` calls and `order_by=`
arguments (a paging helper's) of the code the handler reaches (`calls.py`); the columns of a
`sort` parameter come from its enum in the OpenAPI.
"""

import ast
import inspect
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy import inspect as sa_inspect

from tools.conform.calls import CallGraph, OrderBy, order_column
from tools.conform.problems import Problem
from tools.conform.project import Project
from tools.conform.routes import Route

PAGE_KEYS = {"items", "total", "limit", "offset"}
SORT_PARAMETER = "sort"


class ListChecker:
    """Checks every list operation of one OpenAPI document."""

    def __init__(
        self, project: Project, spec: dict[str, Any], graph: CallGraph, models: list[type]
    ) -> None:
        self.project = project
        self.spec = spec
        self.graph = graph
        self.models = {model.__name__: model for model in models}
        self._indexed: set[tuple[type, tuple[str, ...]]] = set()

    def check(self, routes: list[Route]) -> Iterator[Problem]:
        """Check each list route: bounds, sort values, order and indexes."""
        for route in routes:
            operation = self.spec["paths"].get(route.path, {}).get(route.method.lower())
            if operation is None or route.method != "GET":
                continue
            item = self._page_item(operation)
            if item is None:
                continue
            parameters = {p["name"]: p for p in operation.get("parameters", [])}
            yield from self._check_bounds(route, parameters)
            if SORT_PARAMETER in parameters:
                yield from self._check_sort(route, parameters[SORT_PARAMETER], item)
            yield from self._check_order(route)

    def _page_item(self, operation: dict[str, Any]) -> str | None:
        """The item schema's name when the operation answers a page, else None."""
        ok = operation.get("responses", {}).get("200", {})
        schema = self._resolve(ok.get("content", {}).get("application/json", {}).get("schema"))
        properties = schema.get("properties", {})
        if not set(properties) >= PAGE_KEYS:
            return None
        ref = properties["items"].get("items", {}).get("$ref", "")
        return str(ref.rsplit("/", 1)[-1])

    def _resolve(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        """Follow `$ref`, and take the non-null branch of `anyOf: [X, null]`."""
        schema = schema or {}
        if "$ref" in schema:
            return self._resolve(self.spec["components"]["schemas"][schema["$ref"].split("/")[-1]])
        options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        return self._resolve(options[0]) if len(options) == 1 else schema

    def _check_bounds(self, route: Route, parameters: dict[str, Any]) -> Iterator[Problem]:
        for name in ("limit", "offset"):
            parameter = parameters.get(name)
            schema = self._resolve(parameter.get("schema")) if parameter else {}
            missing = [bound for bound in ("minimum", "maximum") if bound not in schema]
            if parameter is None or parameter.get("in") != "query":
                missing = ["the query parameter itself"]
            if missing:
                yield Problem(
                    route.file,
                    route.line,
                    "list-bounds",
                    f"list {route.label} ({route.name}): `{name}` lacks {' and '.join(missing)}",
                    "take `page: PageDep` (limit 1-100, offset 0 to 2^63-1) from schemas/common",
                )

    def _check_sort(self, route: Route, parameter: dict[str, Any], item: str) -> Iterator[Problem]:
        model = self.models.get(item.removesuffix("Read"))
        if model is None:
            yield self._problem(
                route,
                "list-sort",
                f"cannot tell which model the items ({item}) of this sorted list come from",
                "name the item schema after its model: <Model>Read",
            )
            return
        for value in self._resolve(parameter.get("schema")).get("enum", []):
            column = _column(model, str(value).lstrip("-+"))
            if column is None:
                yield self._problem(
                    route,
                    "list-sort",
                    f"sort value {value!r} is not a column of {model.__name__}",
                    f"name sort values after {model.__name__}'s columns (`-` for descending)",
                )
            elif not column.primary_key:
                yield from self._check_index(model, (column.name,))

    def _check_order(self, route: Route) -> Iterator[Problem]:
        """The list states an ORDER BY, a stable one (ending with the id), and indexes match.

        Each ORDER BY reached is stable (its last term is the id, or a term the checker
        cannot read: a helper's `order_by(*terms, id_column)` is trusted), unstable (its last
        term is plainly another column) or silent (its terms are not written there: a
        forwarded `*order_by`, an `ordering(...)` call). Unstable ones are reported when no
        stable one is reached.
        """
        orders = self.graph.order_bys(route.endpoint)
        if not orders:
            yield self._problem(
                route,
                "list-order",
                "no ORDER BY found in the code this list runs: pages would overlap",
                "order the query by the sort column then the id, e.g. "
                "`.order_by(Model.created_at.desc(), Model.id.desc())`",
            )
        kinds = [self._stability(order) for order in orders]
        unstable = [order for order, kind in zip(orders, kinds, strict=True) if kind == "unstable"]
        for order in unstable if "stable" not in kinds else []:
            last = self._terms(order)[-1]
            if last is not None:  # always so for an unstable order
                model, attribute = last
                yield Problem(
                    order.source.rel,
                    order.line,
                    "list-order",
                    f"ORDER BY ends with {model.__name__}.{attribute}, not the id: "
                    "rows that tie move between pages",
                    f"end the order with {model.__name__}.id (same direction)",
                )
        for order in orders:
            known = [term for term in self._terms(order) if term is not None]
            if known and len(known) == len(order.terms or ()):
                yield from self._check_order_index(known)

    def _stability(self, order: OrderBy) -> str:
        """`stable`, `unstable` or `silent` (see `_check_order`)."""
        if not order.terms or isinstance(order.terms[-1], ast.Constant | ast.Starred):
            return "silent"  # not written here, or `order_by(None)` (clears the order)
        last = self._terms(order)[-1]
        if last is None or _primary_key(*last):
            return "stable"
        return "unstable"

    def _terms(self, order: OrderBy) -> list[tuple[type, str] | None]:
        """(model, attribute) of each term that is plainly a mapped column, else None."""
        found: list[tuple[type, str] | None] = []
        for term in order.terms or ():
            column = order_column(term, order.namespace)
            found.append(column if column and _column(*column) is not None else None)
        return found

    def _check_order_index(self, terms: list[tuple[type, str]]) -> Iterator[Problem]:
        """An ORDER BY of plain columns is served by an index (the id may be implied)."""
        model = terms[-1][0]
        names = tuple(
            _column_name(model, attribute)
            for owner, attribute in terms
            if owner is model and not _primary_key(model, attribute)
        )
        if names:
            yield from self._check_index(model, names)

    def _check_index(self, model: type, names: tuple[str, ...]) -> Iterator[Problem]:
        """An index ends with `names` then the id, after the columns that scope the list.

        Those are at most one foreign-key column (an owner, a parent), or the pair
        `subject_type, subject_id` of rows about a record of any entity (texts, payments).
        """
        if (model, names) in self._indexed:
            return
        self._indexed.add((model, names))
        table: Table = model.__table__  # type: ignore[attr-defined]
        wanted = [*names, *(column.name for column in table.primary_key.columns)]
        for index in table.indexes:
            columns = [column.name for column in index.columns]
            lead = columns[: len(columns) - len(wanted)]
            if columns[len(lead) :] == wanted and _scopes_a_list(table, lead):
                return
        file = inspect.getsourcefile(model) or "?"
        line = inspect.getsourcelines(model)[1]
        listed = ", ".join(f'"{name}"' for name in wanted)
        yield Problem(
            self.project.rel(file),
            line,
            "list-index",
            f"no index of {table.name} ends with ({', '.join(wanted)}), an order its list uses",
            f'add Index("ix_{table.name}_{"_".join(wanted)}", {listed}) to __table_args__ '
            "(after the owner column if the list is scoped to one) and a migration",
        )

    def _problem(self, route: Route, rule: str, message: str, fix: str) -> Problem:
        return Problem(route.file, route.line, rule, f"list {route.label}: {message}", fix)


def _column(model: type, attribute: str) -> Column[Any] | None:
    """The column mapped to `model.attribute`, or None when it is not a column."""
    column: Column[Any] | None = sa_inspect(model).columns.get(attribute)
    return column


def _primary_key(model: type, attribute: str) -> bool:
    column = _column(model, attribute)
    return column is not None and column.primary_key


def _column_name(model: type, attribute: str) -> str:
    column = _column(model, attribute)
    return column.name if column is not None else attribute


SUBJECT_COLUMNS = ["subject_type", "subject_id"]


def _scopes_a_list(table: Table, lead: list[str]) -> bool:
    """Whether `lead`, the first columns of an index, are what a list is filtered on."""
    if lead == SUBJECT_COLUMNS:
        return True
    return len(lead) <= 1 and all(table.columns[name].foreign_keys for name in lead)
