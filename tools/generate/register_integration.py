"""Register a generated integration in the shared files that list every integration.

Each edit adds its lines next to their siblings, and only if they are missing, so running the
generator twice changes nothing:
- `core/config.py`: a `<Name>Provider` enum before `Settings`, and the integration's fields
  after the last field of `Settings` (before its first validator);
- `.env.example`: a commented block at the end;
- `models/__init__.py`: the outbox model (so Alembic sees it);
- `worker/registry.py`: the delivery in `DELIVERIES`;
- `main.py`: the client made in the lifespan (`app.state.<name>_client`) and closed after.
"""

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from tools.generate.source import format_source

if TYPE_CHECKING:
    from tools.generate.integration import Names

CONFIG = "backend/app/core/config.py"
ENV_EXAMPLE = ".env.example"
MODELS_INIT = "backend/app/models/__init__.py"
REGISTRY = "backend/app/worker/registry.py"
MAIN = "backend/app/main.py"
TEMPLATES = Path(__file__).parent / "integration_templates"
_FIRST_VALIDATOR = re.compile(r"\n\n    @(model|field)_validator")
_ALL = re.compile(r"__all__ = \[(?P<names>[^\]]*)\]", re.S)
_LIFESPAN_CLIENT = re.compile(r"^    app\.state\.\w+ = create_\w+\(settings\)\n", re.M)
_LIFESPAN_CLOSE = re.compile(r"^        await app\.state\.\w+\.aclose\(\)\n", re.M)


def register_all(
    root: Path, names: "Names", *, dry_run: bool = False
) -> Iterator[tuple[str, bool]]:
    """Make every registration; yield each shared file and whether it changed."""
    yield CONFIG, _edit(root / CONFIG, lambda s: _config(s, names), dry_run=dry_run)
    yield ENV_EXAMPLE, _edit(root / ENV_EXAMPLE, lambda s: _env(s, names), dry_run=dry_run)
    yield MODELS_INIT, _edit(root / MODELS_INIT, lambda s: _model(s, names), dry_run=dry_run)
    yield REGISTRY, _edit(root / REGISTRY, lambda s: _delivery(s, names), dry_run=dry_run)
    yield MAIN, _edit(root / MAIN, lambda s: _lifespan(s, names), dry_run=dry_run)


def _block(template: str, names: "Names") -> str:
    return Template((TEMPLATES / template).read_text()).substitute(names.substitutions())


def _config(source: str, names: "Names") -> str:
    if f"class {names.cls}Provider(StrEnum):" not in source:
        enum = _block("config_enum.tmpl", names)
        source = source.replace(
            "\n\nclass Settings(BaseSettings):", f"\n\n{enum}\n\nclass Settings(BaseSettings):", 1
        )
    if f"    {names.name}_provider: " not in source:
        fields = _block("config_fields.tmpl", names).rstrip("\n")
        start = source.index("class Settings(BaseSettings):")
        found = _FIRST_VALIDATOR.search(source, start)
        if found is None:
            raise RuntimeError(f"{CONFIG}: no validator after the fields of Settings")
        source = source[: found.start()] + "\n\n" + fields + source[found.start() :]
    return source


def _env(source: str, names: "Names") -> str:
    if f"\n{names.upper}_PROVIDER=" in source:
        return source
    return source.rstrip("\n") + "\n\n" + _block("env.tmpl", names)


def _model(source: str, names: "Names") -> str:
    module = f"backend.app.models.{names.name}_outbox"
    model = f"{names.cls}Outbox"
    if f"from {module} import" in source:
        return source
    source = source.replace("\n__all__ = [", f"from {module} import {model}\n\n__all__ = [", 1)

    def listed(match: re.Match[str]) -> str:
        current = [n.strip().strip('"') for n in match.group("names").split(",") if n.strip()]
        return "__all__ = [\n" + "".join(f'    "{n}",\n' for n in sorted({*current, model})) + "]"

    return _ALL.sub(listed, source, count=1)


def _delivery(source: str, names: "Names") -> str:
    line = f'    "{names.name}": {names.name}_delivery,\n'
    if line in source:
        return source
    module = f"backend.app.worker.{names.name}_delivery"
    opening = "DELIVERIES: dict[str, DeliveryFactory] = {\n"
    start = source.index(opening) + len(opening)
    end = source.index("}\n", start)
    source = source[:end] + line + source[end:]
    anchor = "from backend.app.worker.deliveries import"
    return source.replace(anchor, f"from {module} import {names.name}_delivery\n{anchor}", 1)


def _lifespan(source: str, names: "Names") -> str:
    attribute = f"app.state.{names.name}_client"
    if f"{attribute} = " in source:
        return source
    create = f"    {attribute} = create_{names.name}_client(settings)\n"
    close = f"        await {attribute}.aclose()\n"
    source = _after_last(source, _LIFESPAN_CLIENT, create)
    source = _after_last(source, _LIFESPAN_CLOSE, close)
    module = f"backend.app.integrations.{names.name}"
    anchor = "from backend.app.routers import"
    return source.replace(anchor, f"from {module} import create_{names.name}_client\n{anchor}", 1)


def _after_last(source: str, pattern: re.Pattern[str], line: str) -> str:
    matches = list(pattern.finditer(source))
    if not matches:
        raise RuntimeError(f"{MAIN}: no line like {pattern.pattern!r} in the lifespan")
    end = matches[-1].end()
    return source[:end] + line + source[end:]


def _edit(path: Path, change: Callable[[str], str], *, dry_run: bool) -> bool:
    """Apply `change` to the file (formatted like the repo if Python); return whether it changed."""
    current = path.read_text()
    changed = change(current)
    if changed == current:
        return False
    if path.suffix == ".py":
        changed = format_source(changed, path)
        if changed == current:
            return False
    if not dry_run:
        path.write_text(changed)
    return True
