"""webhookOutbox.nextAttemptAt: deliveries retried with exponential backoff, durable across tracker restarts.

A row is due when nextAttemptAt is NULL (new) or past; the index serves the sender's query
(`status = 'pending' AND nextAttemptAt <= now`).

Revision ID: 0003_security_webhook_outbox
Revises: 0002_denoise_done
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003_security_webhook_outbox"
down_revision = "0002_denoise_done"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhookOutbox", sa.Column("nextAttemptAt", mysql.DATETIME(fsp=3), nullable=True))
    op.create_index("idx_webhook_due", "webhookOutbox", ["status", "nextAttemptAt"])


def downgrade() -> None:
    op.drop_index("idx_webhook_due", table_name="webhookOutbox")
    op.drop_column("webhookOutbox", "nextAttemptAt")
