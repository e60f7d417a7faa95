"""Add subject_cutoffs: a user's or client's tokens issued before a moment are refused.

Written when a user is deactivated or changes password and when a client is deleted, in the same
transaction; read whole into each process's revocation snapshot, and purged once expired. A new table, so
the migration takes no lock on a busy one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subject_cutoffs",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.String(length=255), nullable=False),
        sa.Column("cutoff_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject_id"),
    )
    op.create_index(
        op.f("ix_subject_cutoffs_expires_at"),
        "subject_cutoffs",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_subject_cutoffs_expires_at"), table_name="subject_cutoffs")
    op.drop_table("subject_cutoffs")
