"""Register a generated entity in the two shared files that list every entity.

`models/__init__.py` imports every model (so Alembic sees it) and `main.py` registers every
router (an entity's in `build_api_router`'s loop over the routers that need a token). Each
edit adds one line where its siblings are, and only if it is missing, so running the
generator twice changes nothing; `unregister_*` takes the same lines out again.
"""

import re
from pathlib import Path

from tools.generate.plan import Plan
from tools.generate.source import format_source

MODELS_INIT = "backend/app/models/__init__.py"
MAIN = "backend/app/main.py"
_ROUTER_IMPORT = re.compile(r"from backend\.app\.routers import \((?P<names>[^)]*)\)", re.S)
_ALL = re.compile(r"__all__ = \[(?P<names>[^\]]*)\]", re.S)
# build_api_router's loop over the routers that need a bearer token.
_PROTECTED = re.compile(r"^(?P<indent>[ ]*)for router in \((?P<names>[^)]*)\):", re.M)


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
    """Import the entity's router in `main.py` and list it with the routers that need a token.

    Returns:
        Whether `main.py` changed.
    """
    path = root / MAIN
    source = path.read_text()
    plural = plan.names.plural
    protected = _PROTECTED.search(source)
    if protected is None:
        raise ValueError(f"{MAIN}: no `for router in (...)` loop of protected routers")
    if f"{plural}.router" in _names(protected):
        return False
    source = _ROUTER_IMPORT.sub(
        lambda m: _with_names(m, "from backend.app.routers import (", ")", [plural]), source
    )
    protected = _PROTECTED.search(source)
    assert protected is not None
    routers = [*_names(protected), f"{plural}.router"]
    source = (
        source[: protected.start()] + _router_loop(protected, routers) + source[protected.end() :]
    )
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
    path = root / MAIN
    source = path.read_text()
    plural = plan.names.plural
    protected = _PROTECTED.search(source)
    if protected is not None:
        routers = [name for name in _names(protected) if name != f"{plural}.router"]
        source = (
            source[: protected.start()]
            + _router_loop(protected, routers)
            + source[protected.end() :]
        )
    source = _ROUTER_IMPORT.sub(
        lambda m: _without_name(m, "from backend.app.routers import (", ")", plural), source
    )
    return _save(path, source)


def _names(match: re.Match[str]) -> list[str]:
    """The comma-separated names a match's `names` group lists, comments left out."""
    lines = (line.split("#")[0] for line in match.group("names").splitlines())
    return [name.strip() for line in lines for name in line.split(",") if name.strip()]


def _router_loop(match: re.Match[str], routers: list[str]) -> str:
    """The `for router in (...)` header listing `routers`, one per line, in order."""
    indent = match.group("indent")
    listed = "".join(f"{indent}    {name},\n" for name in routers)
    return f"{indent}for router in (\n{listed}{indent}):"


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
