"""audit events (renumber when merging: the lead's own 0004 lands at the same time)

The audit trail (`core/audit.py`): one row per change of a business record or security
event. On PostgreSQL a statement trigger makes the table append-only: UPDATE is refused,
and DELETE too unless the transaction set `app.audit_prune` to `on`, as the retention prune
(`crud/audit.py::prune_audit_events`) does. TRUNCATE is left to the table's owner.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 13:08:00.118934
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Refuses UPDATE, and DELETE unless the transaction set app.audit_prune (the prune does).
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('app.audit_prune', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("entity_type", sa.String(length=100), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "changes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_action_occurred_at_id", ["action", "occurred_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_audit_events_actor_occurred_at_id", ["actor", "occurred_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_audit_events_entity_type_entity_id_occurred_at_id",
            ["entity_type", "entity_id", "occurred_at", "id"],
            unique=False,
        )
        batch_op.create_index("ix_audit_events_occurred_at_id", ["occurred_at", "id"], unique=False)

    if op.get_context().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_occurred_at_id")
        batch_op.drop_index("ix_audit_events_entity_type_entity_id_occurred_at_id")
        batch_op.drop_index("ix_audit_events_actor_occurred_at_id")
        batch_op.drop_index("ix_audit_events_action_occurred_at_id")

    op.drop_table("audit_events")
