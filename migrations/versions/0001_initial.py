"""Initial schema: the six tables of the pipeline.

fileDistribution, batchStatus, processing_logs, batchExecutionLog, auditResult,
webhookOutbox; names are the seed's, because operators' SQL depends on them.

Revision ID: 0001_initial
Revises:
Create Date: 2026-01-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

TABLE_OPTS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}
NOW3 = sa.text("CURRENT_TIMESTAMP(3)")
NOW3_ON_UPDATE = sa.text("CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)")


def _ts(name: str, *, nullable: bool = False, on_update: bool = False, default: bool = True) -> sa.Column:
    server_default = (NOW3_ON_UPDATE if on_update else NOW3) if default else None
    return sa.Column(name, mysql.DATETIME(fsp=3), nullable=nullable, server_default=server_default)


def _flag(name: str) -> sa.Column:
    return sa.Column(name, mysql.TINYINT(1), nullable=False, server_default=sa.text("0"))


def upgrade() -> None:
    op.create_table(
        "fileDistribution",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("batchId", sa.BigInteger, nullable=False),
        sa.Column("fileId", sa.String(40), nullable=False),
        sa.Column("file", sa.String(512), nullable=False),
        _flag("ivrDone"), _flag("lidDone"), _flag("sttDone"), _flag("llm1Done"), _flag("llm2Done"),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("gpu", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False, server_default="Pending"),
        sa.Column("currentStage", sa.String(16), nullable=True),
        sa.Column("failedStage", sa.String(16), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=True),
        sa.Column("generation", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("lastEvent", mysql.LONGBLOB, nullable=True),
        _ts("createdAt"),
        _ts("updatedAt", on_update=True),
        sa.UniqueConstraint("batchId", "file", name="uq_filedist_batch_file"),
        sa.UniqueConstraint("batchId", "fileId", name="uq_filedist_batch_fileid"),
        **TABLE_OPTS,
    )
    op.create_index("idx_filedist_batch_status", "fileDistribution", ["batchId", "status"])

    op.create_table(
        "batchStatus",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(32), nullable=False, server_default="Pending"),
        *(sa.Column(f"{s}Status", sa.String(16), nullable=False, server_default="Pending")
          for s in ("denoise", "ivr", "lid", "stt", "llm1", "llm2")),
        sa.Column("stages", sa.String(128), nullable=False, server_default=""),
        sa.Column("totalFiles", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("completedFiles", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("failedFiles", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("contentHash", mysql.CHAR(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("callback", sa.String(1024), nullable=True),
        sa.Column("config", sa.JSON, nullable=True),
        _ts("createdAt"),
        _ts("updatedAt", on_update=True),
        _ts("startedAt", nullable=True, default=False),
        _ts("completedAt", nullable=True, default=False),
        **TABLE_OPTS,
    )

    op.create_table(
        "processing_logs",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("eventId", sa.String(64), nullable=False, unique=True),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("file", sa.String(512), nullable=False),
        sa.Column("stage_name", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("duration", sa.Float, nullable=True),
        sa.Column("worker", sa.String(128), nullable=True),
        _ts("created_at"),
        **TABLE_OPTS,
    )
    op.create_index("idx_plogs_batch_status", "processing_logs", ["batch_id", "status"])
    op.create_index("idx_plogs_batch_file_stage", "processing_logs", ["batch_id", "file", "stage_name"])

    op.create_table(
        "batchExecutionLog",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("batchId", sa.BigInteger, nullable=False),
        sa.Column("stage", sa.String(16), nullable=True),
        sa.Column("eventType", sa.String(32), nullable=False),
        sa.Column("file", sa.String(512), nullable=True),
        sa.Column("details", sa.Text, nullable=True),
        sa.Column("dedupKey", sa.String(191), nullable=False, unique=True),
        _ts("createdAt"),
        **TABLE_OPTS,
    )
    op.create_index("idx_bel_batch_stage_type", "batchExecutionLog", ["batchId", "stage", "eventType"])

    op.create_table(
        "auditResult",
        sa.Column("batchId", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("fileId", sa.String(40), nullable=False),
        sa.Column("file", sa.String(512), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("languageProbability", sa.Float, nullable=True),
        sa.Column("ivrEndSec", sa.Float, nullable=True),
        sa.Column("transcriptPath", sa.String(1024), nullable=True),
        sa.Column("transcript", mysql.MEDIUMTEXT, nullable=True),
        sa.Column("speech", sa.JSON, nullable=True),
        sa.Column("answers", sa.JSON, nullable=True),
        sa.Column("normalizedAnswers", sa.JSON, nullable=True),
        sa.Column("ruleResults", sa.JSON, nullable=True),
        sa.Column("tradeChecks", sa.JSON, nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("reasons", sa.JSON, nullable=True),
        _ts("updatedAt", on_update=True),
        sa.PrimaryKeyConstraint("batchId", "fileId"),
        **TABLE_OPTS,
    )

    op.create_table(
        "webhookOutbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("batchId", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("lastError", sa.Text, nullable=True),
        _ts("createdAt"),
        _ts("sentAt", nullable=True, default=False),
        sa.UniqueConstraint("batchId", "kind", name="uq_webhook_batch_kind"),
        **TABLE_OPTS,
    )


def downgrade() -> None:
    for table in ("webhookOutbox", "auditResult", "batchExecutionLog", "processing_logs", "batchStatus",
                  "fileDistribution"):
        op.drop_table(table)
