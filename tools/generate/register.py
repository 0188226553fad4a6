"""Register a generated entity in the two shared files that list every entity.

`models/__init__.py` imports every model (so Alembic sees it) and `main.py` registers every
router. Each edit adds one line where its siblings are, and only if it is missing, so running
the generator twice changes nothing; `unregister_*` takes the same lines out again.
"""

import re
from pathlib import Path

from tools.generate.plan import Plan
from tools.generate.source import format_source

MODELS_INIT = "backend/app/models/__init__.py"
MAIN = "backend/app/main.py"
_ROUTER_IMPORT = re.compile(r"from backend\.app\.routers import \((?P<names>[^)]*)\)", re.S)
_ALL = re.compile(r"__all__ = \[(?P<names>[^\]]*)\]", re.S)


def _model_names(plan: Plan) -> list[str]:
    return [plan.names.cls, *(plan.enum_class(name) for name in plan.enums)]


def register_model(root: Path, plan: Plan, *, dry_run: bool = False) -> bool:
    """Import the entity's model (and enums) in `models/__init__.py`; return whether it changed."""
    path = root / MODELS_INIT
    source = path.read_text()
    module = f"backend.app.models.{plan.names.entity}"
    if f"from {module} import" in source:
        return False
    names = _model_names(plan)
    source = source.replace(
        "\n__all__ = [", f"from {module} import {', '.join(names)}\n\n__all__ = [", 1
    )
    source = _ALL.sub(lambda m: _with_names(m, "__all__ = [", "]", names, quoted=True), source)
    return _save(path, source, dry_run=dry_run)


def register_router(root: Path, plan: Plan, *, dry_run: bool = False) -> bool:
    """Import and include the entity's router in `main.py`; return whether it changed."""
    path = root / MAIN
    source = path.read_text()
    plural = plan.names.plural
    include = f"include_protected(api, {plural}.router)"
    if include in source:
        return False
    source = _ROUTER_IMPORT.sub(
        lambda m: _with_names(m, "from backend.app.routers import (", ")", [plural]), source
    )
    last = source.rfind("    include_protected(api, ")
    end = source.index("\n", last)
    source = source[: end + 1] + f"    {include}\n" + source[end + 1 :]
    return _save(path, source, dry_run=dry_run)


def unregister_model(root: Path, plan: Plan) -> bool:
    """Take the entity's model out of `models/__init__.py`; return whether it changed."""
    path = root / MODELS_INIT
    source = path.read_text()
    module = f"backend.app.models.{plan.names.entity}"
    lines = [line for line in source.splitlines() if not line.startswith(f"from {module} import")]
    source = "\n".join(lines) + "\n"
    for name in _model_names(plan):
        source = source.replace(f'    "{name}",\n', "")
    return _save(path, source)


def unregister_router(root: Path, plan: Plan) -> bool:
    """Take the entity's router out of `main.py`; return whether it changed."""
    return unregister_router_module(root, plan.names.plural)


def unregister_router_module(root: Path, module: str) -> bool:
    """Take `routers/<module>.py` out of `main.py`; return whether it changed."""
    path = root / MAIN
    source = path.read_text()
    source = source.replace(f"    include_protected(api, {module}.router)\n", "")
    source = _ROUTER_IMPORT.sub(
        lambda m: _without_name(m, "from backend.app.routers import (", ")", module), source
    )
    return _save(path, source)


def _with_names(
    match: re.Match[str], opening: str, closing: str, added: list[str], *, quoted: bool = False
) -> str:
    names = [n.strip().strip('"') for n in match.group("names").split(",") if n.strip()]
    names = sorted({*names, *added})
    listed = "".join(f'    "{n}",\n' if quoted else f"    {n},\n" for n in names)
    return f"{opening}\n{listed}{closing}"


def _without_name(match: re.Match[str], opening: str, closing: str, removed: str) -> str:
    names = [
        n.strip() for n in match.group("names").split(",") if n.strip() and n.strip() != removed
    ]
    return f"{opening}\n" + "".join(f"    {n},\n" for n in names) + closing


def _save(path: Path, source: str, *, dry_run: bool = False) -> bool:
    formatted = format_source(source, path)
    if formatted == path.read_text():
        return False
    if not dry_run:
        path.write_text(formatted)
    return True
