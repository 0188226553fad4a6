"""Find the changes between two OpenAPI 3.1 documents that break clients of the older one.

`breaking_changes(old, new)` compares every operation of `old` with the same method on the
same path of `new` (path parameters are matched by position, so renaming `{id}` is not a
change) and returns one `Break` per incompatibility, in the old document's order.

Breaking, per operation:
- the path or the method is gone; the `operationId` changed (a generated client renames the
  method); authentication is newly required;
- a success status (2xx) removed, added or changed (`201 -> 200`): clients check it;
- a parameter removed, a new required one, or one that became required; its schema
  compared as a request (`compat_schema.py`: narrowing breaks);
- the request body removed or newly required, a media type no longer accepted; its schema
  compared as a request;
- a response body, media type or declared header removed from a status both documents
  have; the body's schema compared as a response (widening breaks).

Not breaking: new paths, operations, optional parameters and fields; new response fields;
narrower responses and wider requests; error statuses added or removed (the error body is
the same everywhere and clients handle any 4xx/5xx); descriptions, titles, examples and
component names.
"""

import re

from backend.app.docs.compat_schema import (
    REQUEST,
    RESPONSE,
    Break,
    Direction,
    Json,
    Walk,
    compare,
    deref,
)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PATH_PARAMETER = re.compile(r"\{([^}]*)\}")

__all__ = ["Break", "breaking_changes", "report"]


def breaking_changes(old: Json, new: Json) -> list[Break]:
    """Return every change from `old` to `new` that breaks a client written against `old`.

    Args:
        old: The OpenAPI document clients were built against (the baseline).
        new: The OpenAPI document of the app as it is now.

    Returns:
        The breaks, in the order of `old`'s paths and operations; empty when compatible.
    """
    found: list[Break] = []
    new_paths = {PATH_PARAMETER.sub("{}", path): path for path in new.get("paths", {})}
    for old_path, old_item in old.get("paths", {}).items():
        new_path = new_paths.get(PATH_PARAMETER.sub("{}", old_path))
        for method in METHODS:
            if method not in old_item:
                continue
            name = f"{method.upper()} {old_path}"
            if new_path is None:
                found.append(Break(name, "", "path removed", "path-removed"))
            elif method not in new["paths"][new_path]:
                found.append(Break(name, "", "operation removed", "operation-removed"))
            else:
                pair = _OperationPair(old, new, name, (old_path, new_path), method)
                found.extend(pair.breaks())
    return list(dict.fromkeys(found))


def report(breaks: list[Break]) -> str:
    """Return the breaks as report lines, `METHOD /path: where: what`, one per line."""
    return "\n".join(str(b) for b in breaks)


class _OperationPair:
    """One operation as the old and the new document describe it."""

    def __init__(
        self, old: Json, new: Json, name: str, paths: tuple[str, str], method: str
    ) -> None:
        self.old, self.new, self.name = old, new, name
        self.old_path, self.new_path = paths
        self.old_item: Json = old["paths"][self.old_path]
        self.new_item: Json = new["paths"][self.new_path]
        self.old_op: Json = self.old_item[method]
        self.new_op: Json = self.new_item[method]
        self.found: list[Break] = []

    def breaks(self) -> list[Break]:
        """Compare the two descriptions of the operation; return what breaks."""
        self._compare_identity()
        self._compare_parameters()
        self._compare_request_body()
        self._compare_statuses()
        for status, old_response in self.old_op.get("responses", {}).items():
            new_response = self.new_op.get("responses", {}).get(status)
            if new_response is not None:
                self._compare_response(status, old_response, new_response)
        return self.found

    def _add(self, where: str, kind: str, what: str) -> None:
        self.found.append(Break(self.name, where, what, kind))

    def _walk(self, label: str, direction: Direction) -> Walk:
        return Walk(self.old, self.new, self.name, label, direction, self.found)

    def _compare_identity(self) -> None:
        before, after = self.old_op.get("operationId"), self.new_op.get("operationId")
        if before and before != after:
            self._add("", "operation-renamed", f"operationId {before} -> {after}")
        if not _needs_auth(self.old, self.old_op) and _needs_auth(self.new, self.new_op):
            self._add("", "auth-added", "now requires authentication")

    def _compare_parameters(self) -> None:
        old_parameters = _parameters(self.old, self.old_path, self.old_item, self.old_op)
        new_parameters = _parameters(self.new, self.new_path, self.new_item, self.new_op)
        for key, before in old_parameters.items():
            label = f"{before.get('in')} parameter {before.get('name')}"
            after = new_parameters.get(key)
            if after is None:
                self._add(label, "parameter-removed", "removed")
                continue
            if after.get("required") and not before.get("required"):
                self._add(label, "parameter-required", "now required")
            compare(self._walk(label, REQUEST), before.get("schema", {}), after.get("schema", {}))
        for key, after in new_parameters.items():
            if key not in old_parameters and after.get("required"):
                label = f"{after.get('in')} parameter {after.get('name')}"
                self._add(label, "parameter-required", "new required parameter")

    def _compare_request_body(self) -> None:
        before = (
            deref(self.old, self.old_op["requestBody"]) if "requestBody" in self.old_op else None
        )
        after = (
            deref(self.new, self.new_op["requestBody"]) if "requestBody" in self.new_op else None
        )
        if after is None:
            if before is not None:
                self._add("request body", "body-removed", "no longer accepted")
            return
        if after.get("required") and not (before or {}).get("required"):
            self._add("request body", "body-required", "now required")
        if before is not None:
            self._compare_content("request body", REQUEST, before, after)

    def _compare_statuses(self) -> None:
        old_statuses = set(self.old_op.get("responses", {}))
        new_statuses = set(self.new_op.get("responses", {}))
        removed = sorted(s for s in old_statuses - new_statuses if s.startswith("2"))
        added = sorted(s for s in new_statuses - old_statuses if s.startswith("2"))
        if len(removed) == 1 and len(added) == 1:
            change = f"success status {removed[0]} -> {added[0]}"
            self._add("", "status-changed", change)
            return
        for status in removed:
            self._add(f"{status} response", "status-removed", "success status removed")
        for status in added:
            self._add(f"{status} response", "status-added", "new success status")

    def _compare_response(self, status: str, old_response: Json, new_response: Json) -> None:
        label = f"{status} response"
        before, after = deref(self.old, old_response), deref(self.new, new_response)
        new_headers = {name.lower() for name in after.get("headers", {})}
        for header in before.get("headers", {}):
            if header.lower() not in new_headers:
                self._add(label, "header-removed", f"header {header} removed")
        if before.get("content") and not after.get("content"):
            self._add(label, "body-removed", "no longer has a body")
            return
        self._compare_content(label, RESPONSE, before, after)

    def _compare_content(self, label: str, direction: Direction, old: Json, new: Json) -> None:
        new_content: Json = new.get("content", {})
        for media_type, old_media in old.get("content", {}).items():
            new_media = new_content.get(media_type)
            if new_media is None:
                self._add(label, "media-type-removed", f"{media_type} removed")
                continue
            before, after = old_media.get("schema", {}), new_media.get("schema", {})
            compare(self._walk(label, direction), before, after)


def _needs_auth(spec: Json, operation: Json) -> bool:
    """Return whether every security alternative of `operation` asks for credentials."""
    requirements: list[Json] = operation.get("security", spec.get("security")) or []
    return bool(requirements) and {} not in requirements


def _parameters(spec: Json, path: str, item: Json, operation: Json) -> dict[tuple[str, str], Json]:
    """Return the parameters of an operation keyed so that old and new ones match.

    Path parameters are keyed by position in the path; header names ignore case.
    """
    names = PATH_PARAMETER.findall(path)
    found: dict[tuple[str, str], Json] = {}
    for raw in [*item.get("parameters", []), *operation.get("parameters", [])]:
        parameter = deref(spec, raw)
        where, name = str(parameter.get("in")), str(parameter.get("name"))
        if where == "path" and name in names:
            name = str(names.index(name))
        elif where == "header":
            name = name.lower()
        found[(where, name)] = parameter
    return found
