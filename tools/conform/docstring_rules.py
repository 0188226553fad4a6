"""Docstrings on public modules, classes and functions, and `Raises:` for what they raise.

An error a function raises itself is documented when its `Raises:` section names it, when
the docstring of its class does (`DisabledEhr`: "every call raises ..."), or when its
docstring refers in backticks to a function of the module whose `Raises:` names it (an
implementation pointing at its interface: "see `EhrClient.read_patient`").

Public means what pydocstyle (ruff's `D` rules) means: a name without a leading underscore,
at module level or in a public class; functions nested in functions are private. Magic
methods, `__init__`, `@overload` stubs and `@override` methods are exempt, as in ruff.
"""

import ast
import re
from collections.abc import Iterator

from tools.conform.problems import Problem
from tools.conform.project import FunctionNode, Project, Source

EXEMPT_DECORATORS = {"overload", "override", "setter", "deleter"}
UNDOCUMENTED_RAISES = {"NotImplementedError"}  # an abstract stub, not an error of the contract


def check(project: Project) -> Iterator[Problem]:
    """Check every module under `backend/app/` (migrations are generated, so excluded)."""
    for source in project.python_files(project.app_dir):
        yield from check_source(source)


def check_source(source: Source) -> Iterator[Problem]:
    """Check one module: its own docstring, then its public classes and functions."""
    name = source.path.stem
    if not (name.startswith("_") and not name.startswith("__")) and not _docstring(source.tree):
        yield _missing(source, 1, f"module {source.rel}")
    raises = _raises_by_name(source.tree)
    yield from _check_body(source, source.tree.body, owner="", owner_doc="", raises=raises)


def _check_body(
    source: Source, body: list[ast.stmt], owner: str, owner_doc: str, raises: dict[str, str]
) -> Iterator[Problem]:
    for node in body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            doc = _docstring(node)
            if not doc:
                yield _missing(source, node.lineno, f"class {owner}{node.name}")
            yield from _check_body(source, node.body, f"{owner}{node.name}.", doc or "", raises)
        elif isinstance(node, FunctionNode) and _is_public_function(node):
            doc = _docstring(node)
            if not doc:
                yield _missing(source, node.lineno, f"function {owner}{node.name}")
            else:
                # Documented also: in the class docstring, or under `Raises:` of a function
                # of this module the docstring refers to (`see `EhrClient.read_patient``).
                referred = [raises.get(ref, "") for ref in re.findall(r"`([\w.]+)`", doc)]
                documented = " ".join([_raises_section(doc), owner_doc, *referred])
                yield from _check_raises(source, node, documented, f"{owner}{node.name}")


def _raises_by_name(tree: ast.Module) -> dict[str, str]:
    """The `Raises:` section of every function and method, by `name` and `Class.name`."""
    found = {}
    for node in tree.body:
        members = node.body if isinstance(node, ast.ClassDef) else [node]
        prefix = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
        for member in members:
            if isinstance(member, FunctionNode):
                found[f"{prefix}{member.name}"] = _raises_section(_docstring(member) or "")
    return found


def _is_public_function(node: FunctionNode) -> bool:
    if node.name.startswith("_"):
        return False
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in EXEMPT_DECORATORS:
            return False
    return True


def _docstring(node: ast.Module | ast.ClassDef | FunctionNode) -> str | None:
    return ast.get_docstring(node, clean=True) or None


def _missing(source: Source, line: int, what: str) -> Problem:
    return Problem(
        source.rel,
        line,
        "docstring",
        f"{what} has no docstring",
        "add a one-line summary (Google style; Args/Returns/Raises where they add something)",
    )


def _check_raises(
    source: Source, node: FunctionNode, documented: str, name: str
) -> Iterator[Problem]:
    """A function that raises an error itself names it in its documentation."""
    for raised, line in _raised_names(node):
        if raised in UNDOCUMENTED_RAISES or re.search(rf"\b{raised}\b", documented):
            continue
        yield Problem(
            source.rel,
            line,
            "docstring-raises",
            f"{name} raises {raised} but its docstring has no `Raises:` entry for it",
            f"add `Raises:` with `{raised}: when ...` to the docstring of {name}",
        )


def _raises_section(doc: str) -> str:
    """The text after `Raises:` up to the next section (an unindented `Word:` line)."""
    match = re.search(r"^Raises:\s*$(.*?)(?=^\S[^\n]*:\s*$|\Z)", doc, re.MULTILINE | re.DOTALL)
    return match.group(1) if match else ""


def _raised_names(node: FunctionNode) -> Iterator[tuple[str, int]]:
    """Yield each exception class the function raises itself (not re-raises), once."""
    seen: set[str] = set()
    stack: list[ast.AST] = list(node.body)
    while stack:
        child = stack.pop()
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        stack.extend(ast.iter_child_nodes(child))
        if not isinstance(child, ast.Raise) or child.exc is None:
            continue
        target = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
        raised = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if raised[:1].isupper() and raised not in seen:  # a class, not a re-raised variable
            seen.add(raised)
            yield raised, child.lineno
