"""texts and payments for any record; opt-outs per phone number

Messages and payments no longer belong to a lead: `subject_type` (the record's table) and
`subject_id` say which record they are about, so any entity can be texted or billed. Existing
rows are carried over (`leads`, their lead_id). A STOP is kept per phone number in
`sms_opt_outs` (as Twilio keeps it) instead of on each lead: numbers of opted-out leads are
carried over. Outbound texts also keep the trace of the request that queued them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sms_opt_outs",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_sms_opt_outs")),
    )
    op.execute(
        "INSERT INTO sms_opt_outs (phone, opted_out_at) "
        "SELECT phone, MAX(updated_at) FROM leads "
        "WHERE sms_opted_out AND phone IS NOT NULL GROUP BY phone"
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_type", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("subject_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("trace_context", sa.String(length=64), nullable=True))
    op.execute("UPDATE messages SET subject_type = 'leads', subject_id = lead_id")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_lead_id_created_at_id")
        batch_op.drop_constraint("uq_messages_provider_message_id", type_="unique")
        batch_op.drop_constraint("fk_messages_lead_id_leads", type_="foreignkey")
        batch_op.drop_column("lead_id")
        batch_op.create_index(
            "ix_messages_subject_type_subject_id_created_at_id",
            ["subject_type", "subject_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_unique_constraint(
            "uq_messages_provider_message_id_subject",
            ["provider_message_id", "subject_type", "subject_id"],
        )

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_type", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("subject_id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE payments SET subject_type = 'leads', subject_id = lead_id")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.alter_column("subject_type", existing_type=sa.String(length=50), nullable=False)
        batch_op.alter_column("subject_id", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_index("ix_payments_lead_id_created_at_id")
        batch_op.drop_constraint("fk_payments_lead_id_leads", type_="foreignkey")
        batch_op.drop_column("lead_id")
        batch_op.create_index(
            "ix_payments_subject_type_subject_id_created_at_id",
            ["subject_type", "subject_id", "created_at", "id"],
            unique=False,
        )
    # Last: on SQLite a batch rebuilds the table, which nothing may refer to by then.
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("sms_opted_out")


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sms_opted_out", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        "UPDATE leads SET sms_opted_out = true WHERE phone IN (SELECT phone FROM sms_opt_outs)"
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.alter_column("sms_opted_out", existing_type=sa.Boolean(), server_default=None)

    # Only what was about a lead can go back to the lead_id columns; the rest is dropped.
    op.execute("DELETE FROM payments WHERE subject_type <> 'leads'")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lead_id", BIGINT, nullable=True))
    op.execute("UPDATE payments SET lead_id = subject_id")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_subject_type_subject_id_created_at_id")
        batch_op.alter_column("lead_id", existing_type=BIGINT, nullable=False)
        batch_op.drop_column("subject_id")
        batch_op.drop_column("subject_type")
        batch_op.create_foreign_key(
            "fk_payments_lead_id_leads", "leads", ["lead_id"], ["id"], ondelete="RESTRICT"
        )
        batch_op.create_index(
            "ix_payments_lead_id_created_at_id", ["lead_id", "created_at", "id"], unique=False
        )

    op.execute(
        "DELETE FROM messages WHERE subject_type IS NULL OR subject_type <> 'leads' "
        "OR subject_id NOT IN (SELECT id FROM leads)"
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lead_id", BIGINT, nullable=True))
    op.execute("UPDATE messages SET lead_id = subject_id")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_messages_provider_message_id_subject", type_="unique")
        batch_op.drop_index("ix_messages_subject_type_subject_id_created_at_id")
        batch_op.alter_column("lead_id", existing_type=BIGINT, nullable=False)
        batch_op.drop_column("trace_context")
        batch_op.drop_column("subject_id")
        batch_op.drop_column("subject_type")
        batch_op.create_foreign_key(
            "fk_messages_lead_id_leads", "leads", ["lead_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_unique_constraint(
            "uq_messages_provider_message_id", ["provider_message_id", "lead_id"]
        )
        batch_op.create_index(
            "ix_messages_lead_id_created_at_id", ["lead_id", "created_at", "id"], unique=False
        )
    op.drop_table("sms_opt_outs")
