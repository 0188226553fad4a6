"""The worked example and the generator never drift: the lead slice IS the generator's output."""

from pathlib import Path

from tools.generate.entity import generate

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "backend/app/docs/specs/lead.yaml"


def test_generating_the_lead_spec_reproduces_the_lead_slice() -> None:
    outcome = generate(SPEC, ROOT, dry_run=True)

    assert outcome.written == []  # nothing the generator would write differently
    assert outcome.differs == []  # and nothing edited by hand since
    assert sorted(outcome.unchanged) == [
        "backend/app/crud/leads.py",
        "backend/app/docs/entities/lead.md",
        "backend/app/main.py",
        "backend/app/models/__init__.py",
        "backend/app/models/lead.py",
        "backend/app/routers/leads.py",
        "backend/app/schemas/lead.py",
    ]
