"""Remove the lead example.

The worked example (the lead tracker's leads) was removed with `make remove-example`: drop
the `leads` table, and the texts about leads (deleting a lead deletes its texts). Payments
about leads stay: they are a billing record; with no entity to call back they are inert.
The lead tables came with revisions 0001 (users and leads), 0004 and 0005, which deployed
databases already ran, so the removal appends this revision instead of editing them.
Downgrading recreates the table as revision 0006 left it, empty.

Revision ID: REVISION
Revises: DOWN_REVISION
Create Date: CREATED
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "REVISION"
down_revision: str | None = "DOWN_REVISION"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INDEXES = {
    "ix_leads_created_at_id": ["created_at", "id"],
    "ix_leads_name_id": ["name", "id"],
    "ix_leads_owner_id_created_at_id": ["owner_id", "created_at", "id"],
    "ix_leads_owner_id_name_id": ["owner_id", "name", "id"],
    "ix_leads_owner_id_status": ["owner_id", "status"],
    "ix_leads_owner_id_updated_at_id": ["owner_id", "updated_at", "id"],
    "ix_leads_phone": ["phone"],
    "ix_leads_status": ["status"],
    "ix_leads_updated_at_id": ["updated_at", "id"],
}


def upgrade() -> None:
    """Drop the texts about leads, then the `leads` table and its indexes."""
    op.execute("DELETE FROM messages WHERE subject_type = 'leads'")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
    op.drop_table("leads")


def downgrade() -> None:
    """Recreate the `leads` table (empty) as revision 0006 had it."""
    status = sa.Enum(
        "new",
        "contacted",
        "qualified",
        "won",
        "lost",
        name="lead_status",
        native_enum=False,
        create_constraint=True,
        length=16,
    )
    op.create_table(
        "leads",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("owner_id", BIGINT, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("status", status, nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ehr_patient_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_leads_owner_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
