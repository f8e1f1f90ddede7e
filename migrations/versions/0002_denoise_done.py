"""Add fileDistribution.denoiseDone (the seed's add_denoise_done_column.sql).

Per-file denoise completion, so an interrupted denoise stage resumes where it
stopped. Downgrade is the seed's rollback plan.

Revision ID: 0002_denoise_done
Revises: 0001_initial
Create Date: 2026-01-15
"""

from __future__ import annotations

from alembic import op

revision = "0002_denoise_done"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE fileDistribution ADD COLUMN denoiseDone TINYINT(1) DEFAULT 0 AFTER file")
    op.execute("CREATE INDEX idx_filedist_batch_denoise ON fileDistribution(batchId, denoiseDone)")


def downgrade() -> None:
    # index first: MySQL would otherwise shrink it to (batchId) silently when the column goes
    op.execute("DROP INDEX idx_filedist_batch_denoise ON fileDistribution")
    op.execute("ALTER TABLE fileDistribution DROP COLUMN denoiseDone")
