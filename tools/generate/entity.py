"""Generate an entity's slice from its spec, without ever overwriting a hand-edited file.

Writes `models/<entity>.py`, `schemas/<entity>.py`, `crud/<plural>.py`,
`routers/<plural>.py`, `docs/entities/<entity>.md`, the Alembic revision creating its table
(once), and registers it in `models/__init__.py` and `main.py`. The manifest
(`backend/app/docs/specs/manifest.json`) keeps the hash of each file as generated: a file is
rewritten only while it is still exactly what the generator wrote; a file edited since is
left alone and reported as differing, so business rules added by hand are never lost.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.generate.plan import Plan, names_of
from tools.generate.register import register_model, register_router
from tools.generate.render_crud import render_crud
from tools.generate.render_docs import render_docs
from tools.generate.render_migration import render_migration
from tools.generate.render_model import render_model
from tools.generate.render_router import render_router
from tools.generate.render_schemas import render_schemas
from tools.generate.source import format_source
from tools.generate.spec import EntitySpec, SpecError, load_spec

Entry = dict[str, Any]  # one entity's record in the manifest: its files' hashes, its migration
MANIFEST = Path("backend/app/docs/specs/manifest.json")
VERSIONS = Path("backend/migrations/versions")


@dataclass
class Outcome:
    """What generating did to each file: written, unchanged, or left alone (differs)."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)

    def lines(self, *, checking: bool = False, quiet: bool = False) -> list[str]:
        """One line per file, for the command's output.

        Args:
            checking: the files were not written (`--check`): say they are stale instead.
            quiet: leave out the unchanged files.
        """
        written = [
            f"STALE      {path} (its spec changed: make entity)"
            if checking
            else f"wrote      {path}"
            for path in self.written
        ]
        return [
            *written,
            *(f"unchanged  {path}" for path in ([] if quiet else self.unchanged)),
            *(f"DIFFERS    {path} (edited after generation; left alone)" for path in self.differs),
        ]


def plan_for(spec: EntitySpec, root: Path) -> Plan:
    """Resolve the spec's references against the other specs and build its plan.

    Raises:
        SpecError: a reference names an entity without a spec (other than `user`).
    """
    plan = Plan(spec, names_of(spec.entity, spec.plural))
    for name, field_spec in spec.fields.items():
        if field_spec.type != "reference" or not field_spec.to:
            continue
        if field_spec.to == "user":
            plan.references[name] = names_of("user")
            continue
        target = root / "backend/app/docs/specs" / f"{field_spec.to}.yaml"
        if not target.exists():
            raise SpecError(f"field {name}: no spec for entity {field_spec.to!r} ({target})")
        other = load_spec(target)
        plan.references[name] = names_of(other.entity, other.plural)
    for path in sorted((root / "backend/app/docs/specs").glob("*.yaml")):
        other = load_spec(path) if path.stem != spec.entity else spec
        if any(
            f.type == "reference" and f.to == spec.entity and f.on_delete == "restrict"
            for f in other.fields.values()
        ):
            plan.restricted_by.append(other.entity)
    return plan


def generate(spec_path: Path, root: Path, *, dry_run: bool = False) -> Outcome:
    """Generate (or re-generate) the slice of the spec at `spec_path` under `root`.

    Raises:
        SpecError: the spec is invalid.
    """
    spec = load_spec(spec_path)
    plan = plan_for(spec, root)
    manifest = _read_manifest(root)
    entry = manifest.setdefault(spec.entity, {"files": {}})
    outcome = Outcome()
    names = plan.names
    files = {
        f"backend/app/models/{names.entity}.py": render_model(plan),
        f"backend/app/schemas/{names.entity}.py": render_schemas(plan),
        f"backend/app/crud/{names.plural}.py": render_crud(plan),
        f"backend/app/routers/{names.plural}.py": render_router(plan),
    }
    for path, source in files.items():
        _write(root, path, format_source(source, root / path), entry, outcome, dry_run=dry_run)
    docs_path = f"backend/app/docs/entities/{names.entity}.md"
    _write(root, docs_path, render_docs(plan), entry, outcome, dry_run=dry_run)
    migration = _migration(plan, root, entry)
    if migration is not None:
        path, source = migration
        _write(root, path, format_source(source, root / path), entry, outcome, dry_run=dry_run)
        entry["migration"] = path
    for path, changed in (
        ("backend/app/models/__init__.py", register_model(root, plan, dry_run=dry_run)),
        ("backend/app/main.py", register_router(root, plan, dry_run=dry_run)),
    ):
        (outcome.written if changed else outcome.unchanged).append(path)
    if not dry_run:
        _write_manifest(root, manifest)
    return outcome


def _write(
    root: Path, path: str, source: str, entry: Entry, outcome: Outcome, *, dry_run: bool
) -> None:
    target = root / path
    recorded = entry["files"].get(path)
    if target.exists():
        current = target.read_text()
        if current == source:
            outcome.unchanged.append(path)
            entry["files"][path] = _sha(source)
            return
        if recorded != _sha(current):
            outcome.differs.append(path)
            return
    if not dry_run:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source)
    entry["files"][path] = _sha(source)
    outcome.written.append(path)


def _migration(plan: Plan, root: Path, entry: Entry) -> tuple[str, str] | None:
    """The revision creating the table, unless one exists (generated before, or by hand)."""
    if entry.get("migration"):
        return None
    versions = sorted((root / VERSIONS).glob("*.py"))
    table = plan.names.plural
    creates = re.compile(rf'create_table\(\s*"{re.escape(table)}"')
    if any(creates.search(path.read_text()) for path in versions):
        return None
    numbers = [int(m.group(1)) for p in versions if (m := re.match(r"(\d{4})_", p.name))]
    head = f"{max(numbers):04d}" if numbers else None
    revision = f"{(max(numbers) if numbers else 0) + 1:04d}"
    path = f"{VERSIONS}/{revision}_{table}.py"
    return path, render_migration(plan, revision=revision, down_revision=head)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _read_manifest(root: Path) -> dict[str, Entry]:
    path = root / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def _write_manifest(root: Path, manifest: dict[str, Entry]) -> None:
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
