"""Small helpers for writing Python source: imports, docstrings, literals, formatting.

Renderers write plain lines; `format_source` then sorts the imports and formats the result
with ruff exactly as `make format` would, so generated code reads like the rest of the repo.
"""

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

_STDLIB = {"datetime", "decimal", "enum", "typing", "uuid", "dataclasses", "collections"}


class Imports:
    """The `from x import a, b` lines a module needs, grouped stdlib / third party / ours."""

    def __init__(self) -> None:
        self._names: dict[str, set[str]] = defaultdict(set)
        self._modules: set[str] = set()

    def add(self, module: str, *names: str) -> None:
        """Import `names` from `module`."""
        self._names[module].update(names)

    def add_module(self, module: str) -> None:
        """Import `module` itself (`import uuid`)."""
        self._modules.add(module)

    def render(self) -> list[str]:
        """Return the import lines (ruff sorts them again when formatting)."""
        groups: dict[int, list[str]] = defaultdict(list)
        for module in self._modules:
            groups[0].append(f"import {module}")
        for module, names in self._names.items():
            group = (
                0 if module.split(".")[0] in _STDLIB else 2 if module.startswith("backend") else 1
            )
            groups[group].append(f"from {module} import {', '.join(sorted(names))}")
        lines: list[str] = []
        for group in sorted(groups):
            lines += [*sorted(groups[group]), ""]
        return lines


def docstring(text: str) -> str:
    """A one-line docstring."""
    return '"""' + text.strip().replace('"""', "'''") + '"""'


def quote(text: str) -> str:
    """A string literal in double quotes."""
    return json.dumps(text)


def literal(value: Any) -> str:
    """A Python literal for a JSON-like value (for examples)."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{quote(str(k))}: {literal(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return repr(value)


def enum_member(value: str) -> str:
    """The member name of an enum value: `qualified` -> `QUALIFIED`."""
    name = re.sub(r"[^0-9A-Za-z]+", "_", value).strip("_").upper()
    return name if name and not name[0].isdigit() else f"V_{name}"


def format_source(source: str, path: Path) -> str:
    """Sort the imports and format `source` with ruff, as if it were saved at `path`.

    Raises:
        RuntimeError: ruff refused the source (a generator bug: the text is not Python).
    """
    ruff = [sys.executable, "-m", "ruff"]
    name = str(path)
    fixed = _ruff(
        [*ruff, "check", "--select", "I,F401", "--fix", "--stdin-filename", name, "-"], source
    )
    return _ruff([*ruff, "format", "--stdin-filename", name, "-"], fixed)


def _ruff(argv: list[str], source: str) -> str:
    result = subprocess.run(  # noqa: S603 - our own ruff, on our own generated text
        [*argv, "--quiet"], input=source, capture_output=True, text=True, check=False
    )
    if result.returncode not in (0, 1) or not result.stdout:
        raise RuntimeError(f"ruff could not format the generated code:\n{result.stderr}")
    return result.stdout
