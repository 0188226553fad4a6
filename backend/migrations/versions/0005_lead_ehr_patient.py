"""lead ehr patient

The id of a lead's Patient in the EHR, set when a won lead is converted
(`POST /api/v1/leads/{id}/ehr-patient`); null until then.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 13:01:09.448376
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ehr_patient_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("ehr_patient_id")
