"""Add the opt-in redact stage's columns: fileDistribution.redactDone, batchStatus.redactStatus.

Placed where the stage registry puts them (after stt's), so `SELECT *` and the tables in
`cofi.db` keep stage order. Both statements are plain `ALTER TABLE ... ADD COLUMN ... AFTER`,
which MariaDB and MySQL 8 accept (and run in place, without copying the table). Batches that
existed before get redactDone = 0 and redactStatus = 'Pending'; their plans never name redact,
so resume and the progress rules ignore both.

Revision ID: 0004_redact_stage
Revises: 0003_security_webhook_outbox
Create Date: 2026-02-01
"""

from __future__ import annotations

from alembic import op

revision = "0004_redact_stage"
down_revision = "0003_security_webhook_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE fileDistribution ADD COLUMN redactDone TINYINT(1) NOT NULL DEFAULT 0 AFTER sttDone")
    op.execute("ALTER TABLE batchStatus ADD COLUMN redactStatus VARCHAR(16) NOT NULL DEFAULT 'Pending' AFTER sttStatus")


def downgrade() -> None:
    op.execute("ALTER TABLE batchStatus DROP COLUMN redactStatus")
    op.execute("ALTER TABLE fileDistribution DROP COLUMN redactDone")
