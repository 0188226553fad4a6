"""The files the checker reads: paths relative to the repository, parsed once."""

import ast
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
SKIPPED_DIRS = {"__pycache__", "static"}


@dataclass(frozen=True)
class Source:
    """A Python file, its text and its syntax tree."""

    path: Path
    rel: str
    text: str
    tree: ast.Module


class Project:
    """A repository checkout: `backend/` under `root`, and a cache of parsed files."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.backend = self.root / "backend"
        self.app_dir = self.backend / "app"
        self._sources: dict[Path, Source] = {}

    def rel(self, path: Path | str) -> str:
        """Return `path` relative to the root when it lies inside it, else absolute."""
        resolved = Path(path).resolve()
        if resolved.is_relative_to(self.root):
            return resolved.relative_to(self.root).as_posix()
        return resolved.as_posix()

    def source(self, path: Path | str) -> Source:
        """Return the parsed file at `path` (read and parsed once)."""
        resolved = Path(path).resolve()
        if resolved not in self._sources:
            text = resolved.read_text(encoding="utf-8")
            tree = ast.parse(text, filename=str(resolved))
            self._sources[resolved] = Source(resolved, self.rel(resolved), text, tree)
        return self._sources[resolved]

    def python_files(self, under: Path) -> Iterator[Source]:
        """Yield every Python file below `under`, in path order, skipping caches and assets."""
        for path in sorted(under.rglob("*.py")):
            if not SKIPPED_DIRS & set(path.relative_to(under).parts):
                yield self.source(path)

    def function(self, func: Callable[..., object]) -> tuple[Source, FunctionNode] | None:
        """Find the `def` of a function object in its file, or None (no source, a lambda)."""
        func = inspect.unwrap(func)
        code = getattr(func, "__code__", None)
        if code is None or code.co_name == "<lambda>" or not Path(code.co_filename).is_file():
            return None
        source = self.source(code.co_filename)
        for node in ast.walk(source.tree):
            if isinstance(node, FunctionNode) and node.name == code.co_name:
                first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                if code.co_firstlineno in (first, node.lineno):
                    return source, node
        return None


def decorator_call(node: FunctionNode, names: set[str]) -> ast.Call | None:
    """Return the decorator `@<object>.<name>(...)` of `node` whose name is in `names`."""
    for decorator in node.decorator_list:
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr in names
        ):
            return decorator
    return None


def keyword(call: ast.Call, name: str) -> ast.keyword | None:
    """Return the keyword argument `name` of `call`, if given."""
    return next((kw for kw in call.keywords if kw.arg == name), None)
