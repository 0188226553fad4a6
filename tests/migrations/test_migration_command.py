"""`make migration MSG=...` (`python -m tools.migration new`) in a copy of the repository.

A model change gives the next numbered revision with the types the models have (BIGINT stays
BIGINT on PostgreSQL), in batch blocks that run on both databases; no change writes nothing.
The scratch database it migrates is its own and is gone afterwards.
"""

import re
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, POSTGRES_ADMIN_URL, fresh_postgres_database
from tests.repo_copy import MAKE, ROOT, assert_ok, copy_repository, run_in

pytestmark = pytest.mark.slow  # several subprocesses in a copy of the repository

PY = sys.executable
MESSAGE = "users: referrer; keys without a user"
KEY_USER = '    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))\n'
ACTIVE = "    is_active: Mapped[bool] = mapped_column(default=True)\n"
REFERRER = (
    "    referrer_id: Mapped[int | None] = mapped_column(\n"
    '        ForeignKey("users.id", ondelete="SET NULL")\n'
    "    )\n"
)


def _revisions(root: Path) -> set[str]:
    return {p.name for p in (root / "backend/migrations/versions").glob("[0-9]*.py")}


def _next_number() -> tuple[str, str]:
    numbers = [int(name[:4]) for name in _revisions(ROOT)]
    return f"{max(numbers):04d}", f"{max(numbers) + 1:04d}"


def _change_the_models(copy: Path) -> None:
    """Make `idempotency_keys.user_id` (a BIGINT FK) optional; give users a `referrer_id` FK."""
    key = copy / "backend/app/models/idempotency_key.py"
    assert KEY_USER in key.read_text()
    key.write_text(key.read_text().replace(KEY_USER, KEY_USER.replace("[int]", "[int | None]")))
    user = copy / "backend/app/models/user.py"
    source = user.read_text()
    assert ACTIVE in source
    source = source.replace(ACTIVE, ACTIVE + REFERRER).replace(
        "from sqlalchemy import String,", "from sqlalchemy import ForeignKey, String,"
    )
    user.write_text(source)


@pytest.fixture(params=BACKENDS)
async def scratch_flags(request: pytest.FixtureRequest) -> list[str]:
    """Where the command makes its scratch database: `--sqlite`, or our PostgreSQL server."""
    if request.param == "sqlite":
        return ["--sqlite"]
    async with fresh_postgres_database():  # skips, or fails under CI, if the server is down
        pass
    return ["--server", POSTGRES_ADMIN_URL]


async def test_no_model_change_writes_no_revision_and_says_so(tmp_path: Path, scratch_flags):
    copy = copy_repository(tmp_path / "repo")

    out = assert_ok(run_in(copy, PY, "-m", "tools.migration", "new", "nothing", *scratch_flags))

    assert "No changes: the models match migration head" in out
    assert _revisions(copy) == _revisions(ROOT)
    assert list((copy / "data").glob("scratch_*")) == []  # the SQLite scratch file is gone


async def test_a_model_change_gives_the_next_revision_with_the_right_types(
    tmp_path: Path, scratch_flags
):
    copy = copy_repository(tmp_path / "repo")
    head, following = _next_number()
    _change_the_models(copy)

    out = assert_ok(run_in(copy, PY, "-m", "tools.migration", "new", MESSAGE, *scratch_flags))

    [written] = _revisions(copy) - _revisions(ROOT)
    assert written == f"{following}_users_referrer_keys_without_a_user.py"
    assert f"wrote backend/migrations/versions/{written}" in out
    text = (copy / "backend/migrations/versions" / written).read_text()
    assert f'revision: str = "{following}"' in text
    assert f'down_revision: str | None = "{head}"' in text
    assert "auto generated" not in text  # autogenerate's markers are taken out
    assert "backend.app" not in text  # it stands alone
    code = re.sub(r"\s+", "", text)  # as written, whatever ruff's line breaks
    assert 'sa.Column("referrer_id",sa.BigInteger().with_variant(sa.Integer(),"sqlite"),' in code
    assert 'batch_op.create_foreign_key(batch_op.f("fk_users_referrer_id_users"),"users",' in code
    # PostgreSQL reports the column as it is; SQLite only knows INTEGER (why PG is preferred)
    existing = "sa.INTEGER()" if "--sqlite" in scratch_flags else "sa.BIGINT()"
    assert f'alter_column("user_id",existing_type={existing},nullable=True)' in code
    path = f"backend/migrations/versions/{written}"
    assert_ok(run_in(copy, PY, "-m", "ruff", "check", path))
    assert_ok(run_in(copy, PY, "-m", "ruff", "format", "--check", path))
    # the revision brings a fresh database of either kind exactly to the changed models
    for flags in (["--sqlite"], scratch_flags):
        assert "The models match migration head" in assert_ok(
            run_in(copy, PY, "-m", "tools.migration", "check", *flags)
        )
    assert list((copy / "data").glob("scratch_*")) == []


def test_make_migration_without_a_message_refuses(tmp_path: Path):
    copy = copy_repository(tmp_path / "repo")

    result = run_in(copy, *MAKE, "migration")

    assert result.returncode != 0
    assert 'new needs a message: make migration MSG="what it does"' in result.stderr
    assert _revisions(copy) == _revisions(ROOT)
