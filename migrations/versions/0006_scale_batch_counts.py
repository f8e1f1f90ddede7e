"""batchFileCounts: each batch's file counts, kept by the tracker as files move.

The tracker used to count a batch's files (done flags, completed, failed per stage) with a query over
all its fileDistribution rows on every poll: cost per event grew with the batch. Now each saved row
moves its batch's counts by what changed (`name` = total, completed, failed, cancelled, done:<stage>,
failed:<stage>: no column per stage, so a new stage needs nothing here). A batch without counts is
counted once from fileDistribution when the tracker next needs them.
(The webhook sender's look for due rows uses 0003's index on webhookOutbox(status, nextAttemptAt).)

Revision ID: 0006_scale_batch_counts
Revises: 0005_isolation_file_identity
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_scale_batch_counts"
down_revision = "0005_isolation_file_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batchFileCounts",
        sa.Column("batchId", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
    )


def downgrade() -> None:
    op.drop_table("batchFileCounts")
