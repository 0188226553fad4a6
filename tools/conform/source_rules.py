"""Rules read from the source alone: exceptions, environment reads, secrets, module size."""

import ast
import re
from collections.abc import Iterator

from tools.conform.problems import Problem
from tools.conform.project import Project, Source

MAX_MODULE_LINES = 500
CONFIG_MODULE = "backend/app/core/config.py"
# Modules allowed to catch every exception without re-raising, and why.
BLIND_EXCEPT_ALLOWED = {
    "backend/app/core/middleware.py": "the last-resort middleware turns any crash into a 500",
}
BLIND_TYPES = {"Exception", "BaseException"}
# A catch-all kept on purpose says why on its line, as ruff's BLE001 asks: "noqa: BLE001 - why".
JUSTIFIED_BLIND = re.compile(r"#\s*noqa:[^#]*\bBLE001\b[^#]*?\s-+\s*\w")
ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
SECRET_WORDS = {"key", "secret", "token", "password", "passwd", "pwd", "apikey", "credentials"}
SECRET_VALUES = {
    "a Stripe secret key": re.compile(r"\b[rs]k_(live|test)_[A-Za-z0-9]{10,}"),
    "a Stripe webhook secret": re.compile(r"\bwhsec_[A-Za-z0-9_]{10,}"),
    "a Twilio account SID": re.compile(r"\bAC[0-9a-f]{32}\b"),
    "a Twilio API key SID": re.compile(r"\bSK[0-9a-f]{32}\b"),
    "an AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "a GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "a Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
DEV_PREFIX = "DEV_"
# Documentation examples (OpenAPI `examples`) may show a made-up password or token.
EXAMPLE_WORDS = ("example", "json_schema_extra")


def check(project: Project) -> Iterator[Problem]:
    """Run every source rule over the Python files under `backend/`."""
    for source in project.python_files(project.backend):
        yield from _module_size(source)
        yield from _excepts(source)
        if source.rel != CONFIG_MODULE:
            yield from _environment_reads(source)
        yield from _secret_literals(source)


def _module_size(source: Source) -> Iterator[Problem]:
    lines = code_lines(source)
    if lines > MAX_MODULE_LINES:
        yield Problem(
            source.rel,
            1,
            "module-size",
            f"{lines} lines of code, over the limit of {MAX_MODULE_LINES} "
            "(blank lines, comments and docstrings not counted)",
            "split the module by job (e.g. the interface, the client, the fake)",
        )


def code_lines(source: Source) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring.

    Docstrings are not counted because the MUST list demands them (Args, Returns, Raises):
    documenting a module must never push it over the size limit.
    """
    docstrings: set[int] = set()
    for node in _docstring_nodes(source.tree):
        docstrings.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return sum(
        1
        for number, line in enumerate(source.text.splitlines(), start=1)
        if line.strip() and not line.strip().startswith("#") and number not in docstrings
    )


def _excepts(source: Source) -> Iterator[Problem]:
    for node in ast.walk(source.tree):
        if not isinstance(node, ast.ExceptHandler):
            continue
        if node.type is None:
            yield Problem(
                source.rel,
                node.lineno,
                "bare-except",
                "bare `except:` catches everything, even KeyboardInterrupt",
                "catch the specific exceptions the block can raise",
            )
        elif _is_blind(node.type) and not _reraises(node) and not _allowed(source, node):
            yield Problem(
                source.rel,
                node.lineno,
                "blind-except",
                f"`except {ast.unparse(node.type)}` swallows every error",
                "catch the specific exceptions, or end the block with a bare `raise` (a "
                "deliberate catch-all says why: `# noqa: BLE001 - <reason>`)",
            )


def _allowed(source: Source, handler: ast.ExceptHandler) -> bool:
    """The last-resort middleware, or a catch-all whose line says why it is kept."""
    line = source.text.splitlines()[handler.lineno - 1]
    return source.rel in BLIND_EXCEPT_ALLOWED or bool(JUSTIFIED_BLIND.search(line))


def _is_blind(type_node: ast.expr) -> bool:
    names = type_node.elts if isinstance(type_node, ast.Tuple) else [type_node]
    for name in names:
        last = name.attr if isinstance(name, ast.Attribute) else getattr(name, "id", "")
        if last in BLIND_TYPES:
            return True
    return False


def _reraises(handler: ast.ExceptHandler) -> bool:
    """Whether the handler raises the caught exception again (`raise` or `raise exc`)."""
    for node in _walk_same_scope(handler.body):
        if isinstance(node, ast.Raise):
            if node.exc is None:
                return True
            if isinstance(node.exc, ast.Name) and node.exc.id == handler.name:
                return True
    return False


def _walk_same_scope(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Walk statements without entering nested functions or classes."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                stack.append(child)


def _environment_reads(source: Source) -> Iterator[Problem]:
    for node in ast.walk(source.tree):
        found = None
        if isinstance(node, ast.Attribute) and node.attr in ENV_NAMES:
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                found = (f"os.{node.attr}", node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            names = [alias.name for alias in node.names if alias.name in ENV_NAMES]
            found = (f"from os import {', '.join(names)}", node.lineno) if names else None
        if found:
            yield Problem(
                source.rel,
                found[1],
                "env-read",
                f"{found[0]} reads the environment outside {CONFIG_MODULE}",
                "add a field to Settings (and .env.example) and receive it via SettingsDep",
            )


def _secret_literals(source: Source) -> Iterator[Problem]:
    docstrings = _docstring_nodes(source.tree)
    dev_defaults = _dev_defaults(source) if source.rel == CONFIG_MODULE else set()
    examples = _example_nodes(source.tree)
    found: dict[int, str] = {}
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node in docstrings or node.value in dev_defaults:
                continue
            for what, pattern in SECRET_VALUES.items():
                if pattern.search(node.value):
                    found.setdefault(node.lineno, f"a literal looks like {what}")
    for name, value, line in _named_strings(source.tree, skip=examples):
        if _secret_name(name) and value.strip() and value not in dev_defaults:
            found.setdefault(line, f"`{name}` is set to a string literal")
    for line, message in sorted(found.items()):
        yield _secret_problem(source, line, message)


def _secret_problem(source: Source, line: int, message: str) -> Problem:
    return Problem(
        source.rel,
        line,
        "secret-literal",
        message,
        "read it from Settings (a SecretStr field documented in .env.example); a development "
        f"default is a `{DEV_PREFIX}*` constant in {CONFIG_MODULE} that production refuses",
    )


def _secret_name(name: str) -> bool:
    """Whether a name says it holds a secret: its last word is key, secret, token..."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().strip("_").split("_")
    return words[-1] in SECRET_WORDS


def _named_strings(tree: ast.Module, skip: set[ast.AST]) -> Iterator[tuple[str, str, int]]:
    """Yield (name, string, line) for strings bound to a name, keyword, default or dict key."""
    for node in ast.walk(tree):
        if node in skip:
            continue
        pairs: list[tuple[ast.expr | str | None, ast.expr | None]] = []
        if isinstance(node, ast.Assign):
            pairs = [(target, node.value) for target in node.targets]
        elif isinstance(node, ast.AnnAssign):
            pairs = [(node.target, node.value)]
        elif isinstance(node, ast.keyword):
            pairs = [(node.arg, node.value)]
        elif isinstance(node, ast.Dict):
            pairs = list(zip(node.keys, node.values, strict=True))
        elif isinstance(node, ast.arguments):
            positional = node.posonlyargs + node.args
            defaults = [
                (arg.arg, value)
                for arg, value in zip(
                    positional[len(positional) - len(node.defaults) :], node.defaults, strict=True
                )
            ]
            kw_defaults = [
                (arg.arg, value)
                for arg, value in zip(node.kwonlyargs, node.kw_defaults, strict=True)
            ]
            pairs = [*defaults, *kw_defaults]
        for target, value in pairs:
            name = _target_name(target)
            if name and isinstance(value, ast.Constant) and isinstance(value.value, str):
                yield name, value.value, value.lineno


def _target_name(target: ast.expr | str | None) -> str | None:
    if isinstance(target, str):
        return target
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Constant) and isinstance(target.value, str):
        return target.value
    return None


def _dev_defaults(source: Source) -> set[str]:
    """Values of module-level `DEV_*` constants: development defaults production refuses."""
    values = set()
    for node in source.tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if names and all(name.startswith(DEV_PREFIX) for name in names):
                values.add(str(node.value.value))
    return values


def _docstring_nodes(tree: ast.Module) -> set[ast.Constant]:
    found: set[ast.Constant] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(first.value)
    return found


def _example_nodes(tree: ast.Module) -> set[ast.AST]:
    """Every node inside a documentation example (`examples=`, `*_EXAMPLE = {...}`)."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and _is_example(node.arg):
            roots.append(node.value)
        elif isinstance(node, ast.Dict):
            roots += [v for k, v in zip(node.keys, node.values, strict=True) if _is_example(k)]
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_is_example(_target_name(target)) for target in targets):
                roots.append(node.value)
    return {inner for root in roots for inner in ast.walk(root)}


def _is_example(name: ast.expr | str | None) -> bool:
    text = name if isinstance(name, str) else _target_name(name)
    return bool(text) and any(word in str(text).lower() for word in EXAMPLE_WORDS)
