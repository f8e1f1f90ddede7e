"""Exact file identity: file names compare byte for byte, so two files never merge.

Under `utf8mb4_unicode_ci` the unique key (batchId, file) took `A.wav` and `a.wav` (or `José.wav`
and `Jose.wav`, or `a.wav` and `a.wav `) for one file while the tracker compares exact strings:
the second file was lost without a word. The `file` columns become binary and NO PAD
(`utf8mb4_nopad_bin` on MariaDB, `utf8mb4_0900_bin` on MySQL 8), keeping their names and types.
Also an index on fileDistribution(fileId): the tracker finds the file of an unreadable event by its
Kafka key (the file id) alone.

The downgrade refuses, with the rows named, when a batch holds files the old collation would merge.

Revision ID: 0005_isolation_file_identity
Revises: 0004_redact_stage
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_isolation_file_identity"
down_revision = "0004_redact_stage"
branch_labels = None
depends_on = None

OLD_COLLATION = "utf8mb4_unicode_ci"
# (table, NOT NULL) of every `file` column
FILE_COLUMNS = (("fileDistribution", True), ("processing_logs", True), ("batchExecutionLog", False),
                ("auditResult", True))


def binary_collation(bind: sa.engine.Connection) -> str:
    """A binary collation without PAD SPACE (trailing spaces count) on this server."""
    version = str(bind.execute(sa.text("SELECT VERSION()")).scalar() or "")
    return "utf8mb4_nopad_bin" if "mariadb" in version.lower() else "utf8mb4_0900_bin"


def _set_collation(collation: str) -> None:
    for table, not_null in FILE_COLUMNS:
        op.execute(f"ALTER TABLE {table} MODIFY file VARCHAR(512) CHARACTER SET utf8mb4 COLLATE {collation}"
                   f"{' NOT NULL' if not_null else ' NULL'}")


def upgrade() -> None:
    _set_collation(binary_collation(op.get_bind()))
    op.execute("CREATE INDEX idx_filedist_fileid ON fileDistribution(fileId)")


def downgrade() -> None:
    twins = op.get_bind().execute(sa.text(
        f"SELECT batchId, MIN(file), MAX(file), COUNT(*) FROM fileDistribution "
        f"GROUP BY batchId, file COLLATE {OLD_COLLATION} HAVING COUNT(*) > 1 LIMIT 5")).all()
    if twins:
        listed = "; ".join(f"batch {b}: {lo!r} / {hi!r} ({n} files)" for b, lo, hi, n in twins)
        raise RuntimeError(f"cannot downgrade: {OLD_COLLATION} would merge files that differ only in case, "
                           f"accents or trailing spaces ({listed}); delete or rename those rows first")
    op.execute("DROP INDEX idx_filedist_fileid ON fileDistribution")
    _set_collation(OLD_COLLATION)
