"""Remove the worked example from a repository: files, marked lines, registrations, tables.

`remove_example(root)` does it in an order that can be read off the result: refuse if an
entity of the client's still refers to leads; take the lead routers and model out of
`main.py` and `models/__init__.py` (the generator's own `unregister_*`); strip the marked
blocks of every shared file; delete the manifest's files; append the revision that drops the
lead tables; let ruff drop imports the stripped lines used; regenerate the API docs and record
the API baseline without the lead routes.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tools.generate.entity import plan_for
from tools.generate.register import unregister_model, unregister_router_module
from tools.generate.spec import load_spec
from tools.remove_example.manifest import FILES, ROUTERS, SPEC
from tools.remove_example.markers import marked_files, strip_blocks

VERSIONS = "backend/migrations/versions"
GENERATOR_MANIFEST = "backend/app/docs/specs/manifest.json"
REVISION_TEMPLATE = Path(__file__).with_name("lead_revision.py")
_REVISION = re.compile(r'^revision: str = "(?P<id>[^"]+)"', re.M)
_DOWN_REVISION = re.compile(r'^down_revision: str \| None = "(?P<id>[^"]+)"', re.M)


class RemovalError(RuntimeError):
    """The example cannot be removed from this repository (or is gone already)."""


@dataclass
class Removal:
    """What the removal changed, as paths relative to the repository."""

    deleted: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    migration: str = ""

    def lines(self) -> list[str]:
        """Return the report a person reads, one line per file."""
        return [
            *(f"deleted    {path}" for path in self.deleted),
            *(f"edited     {path}" for path in self.edited),
            f"wrote      {self.migration} (drops the lead tables)",
            "wrote      backend/app/docs/openapi.json, api.md, baselines/ (without /leads)",
            f"{len(self.deleted)} files deleted, {len(self.edited)} edited, 1 migration added",
        ]


def remove_example(root: Path) -> Removal:
    """Remove the lead example from the repository at `root`.

    Raises:
        RemovalError: the example is gone already, or another entity's spec refers to leads.
    """
    spec_path = root / SPEC
    if not spec_path.exists():
        raise RemovalError(f"{SPEC} is not there: the example was removed already")
    plan = plan_for(load_spec(spec_path), root)
    _refuse_references(root)
    removal = Removal()
    edited = {root / "backend/app/models/__init__.py": unregister_model(root, plan)}
    main_changes = [unregister_router_module(root, module) for module in ROUTERS]
    edited[root / "backend/app/main.py"] = any(main_changes)
    removal.migration = _append_revision(root)  # before the template goes with the files
    deleted = {root / name for name in FILES}
    for path in marked_files(root):
        if path not in deleted:
            path.write_text(strip_blocks(path.read_text(), where=str(path.relative_to(root))))
            edited[path] = True
    edited[root / GENERATOR_MANIFEST] = _forget_generated(root, plan.names.entity)
    for path in sorted(deleted):
        if path.exists():
            path.unlink()
            removal.deleted.append(_shown(path, root))
    _remove_empty_folders(root, deleted)
    changed = sorted(path for path, was_changed in edited.items() if was_changed)
    removal.edited = [_shown(path, root) for path in changed]
    _tidy_python(root, [path for path in changed if path.suffix == ".py"])
    _python(root, "-m", "backend.app.docs.generate")
    _python(root, "-m", "backend.app.docs.api_baseline", "record", "--accept-breaking")
    return removal


def _refuse_references(root: Path) -> None:
    """Refuse while a spec other than the lead's has a reference to leads."""
    for path in sorted((root / "backend/app/docs/specs").glob("*.yaml")):
        other = load_spec(path)
        if other.entity == "lead":
            continue
        for name, field_spec in other.fields.items():
            if field_spec.type == "reference" and field_spec.to == "lead":
                raise RemovalError(
                    f"{_shown(path, root)}: field {name} refers to leads; remove or retarget "
                    "it (and its column) first"
                )


def _forget_generated(root: Path, entity: str) -> bool:
    """Take the entity out of the generator's manifest; return whether it was there."""
    path = root / GENERATOR_MANIFEST
    manifest = json.loads(path.read_text())
    if manifest.pop(entity, None) is None:
        return False
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return True


def _remove_empty_folders(root: Path, deleted: set[Path]) -> None:
    """Remove the folders the deletions emptied (their bytecode caches do not count)."""
    for folder in sorted({path.parent for path in deleted}, key=lambda p: -len(p.parts)):
        if folder == root or not folder.is_dir():
            continue
        shutil.rmtree(folder / "__pycache__", ignore_errors=True)
        if not any(folder.iterdir()):
            folder.rmdir()


def _append_revision(root: Path) -> str:
    """Write the revision that drops the lead tables after the current head; return its path."""
    versions = root / VERSIONS
    revisions: dict[str, str | None] = {}
    for path in versions.glob("*.py"):
        text = path.read_text()
        if found := _REVISION.search(text):
            down = _DOWN_REVISION.search(text)
            revisions[found["id"]] = down["id"] if down else None
    heads = set(revisions) - {down for down in revisions.values() if down}
    if len(heads) != 1:
        raise RemovalError(f"expected one migration head, found {sorted(heads)}")
    head = heads.pop()
    new_id = f"{int(head) + 1:04d}" if head.isdigit() else f"{head}_no_leads"
    source = REVISION_TEMPLATE.read_text()
    source = source.replace("DOWN_REVISION", head).replace("REVISION", new_id)
    source = source.replace("CREATED", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"))
    target = versions / f"{new_id}_remove_the_lead_example.py"
    target.write_text(source)
    return _shown(target, root)


def _tidy_python(root: Path, paths: list[Path]) -> None:
    """Drop imports only the stripped lines used, sort what is left, format."""
    if not paths:
        return
    names = [str(path) for path in paths]
    _python(root, "-m", "ruff", "check", "--quiet", "--fix", "--select", "F401,I001", *names)
    _python(root, "-m", "ruff", "format", "--quiet", *names)


def _python(root: Path, *argv: str) -> None:
    """Run this interpreter in `root`, importing that repository's code."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, *argv], cwd=root, env=env, check=True)  # noqa: S603 - our own tools


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root))
