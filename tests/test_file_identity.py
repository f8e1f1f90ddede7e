"""Exact file identity (migration 0005): names that differ only in case, accents or trailing spaces are
different files in every table, the downgrade refuses to merge them, and upgrade -> downgrade -> upgrade
works on an empty or twin-free database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, text

from cofi import db

pytestmark = pytest.mark.integration

REVISION, PREVIOUS = "0005_isolation_file_identity", "0004_redact_stage"
TWINS = ["A.wav", "a.wav", "José.wav", "Jose.wav", "x.wav", "x.wav "]


def _collations(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SHOW FULL COLUMNS FROM {t} LIKE 'file'")).mappings().one()["Collation"]
                    for t in ("fileDistribution", "processing_logs", "batchExecutionLog", "auditResult")}
    finally:
        engine.dispose()


def _insert_twins(engine: Engine, batch_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(db.file_distribution.insert(), [
            {"batchId": batch_id, "fileId": f"f{i}", "file": name} for i, name in enumerate(TWINS)])
        conn.execute(db.processing_logs.insert(), [
            {"eventId": f"e{i}", "batch_id": str(batch_id), "file": name, "stage_name": "lid", "status": "success"}
            for i, name in enumerate(TWINS)])


def test_file_columns_are_binary_and_twins_are_distinct_rows(db_url: str, db_engine: Engine) -> None:
    assert set(_collations(db_url).values()) <= {"utf8mb4_nopad_bin", "utf8mb4_0900_bin"}
    _insert_twins(db_engine, 7)
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(DISTINCT file) FROM fileDistribution WHERE batchId = 7")).scalar() == 6
        assert conn.execute(text("SELECT COUNT(DISTINCT file) FROM processing_logs WHERE batch_id = '7'")).scalar() == 6
        assert conn.execute(text("SELECT fileId FROM fileDistribution WHERE batchId = 7 AND file = 'a.wav'")
                            ).scalars().all() == ["f1"]


def test_downgrade_refuses_to_merge_twins_then_upgrade_down_up(db_url: str, db_engine: Engine) -> None:
    _insert_twins(db_engine, 8)
    with pytest.raises(RuntimeError, match=r"cannot downgrade.*batch 8"):
        db.downgrade(db_url, PREVIOUS)
    assert db.current_revision(db_url) == REVISION  # the refusing migration undid nothing
    with db_engine.begin() as conn:
        conn.execute(text("DELETE FROM fileDistribution WHERE file IN ('a.wav', 'Jose.wav', 'x.wav ')"))

    db.downgrade(db_url, PREVIOUS)
    assert db.current_revision(db_url) == PREVIOUS
    assert set(_collations(db_url).values()) == {"utf8mb4_unicode_ci"}
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM fileDistribution WHERE batchId = 8")).scalar() == 3
        assert not conn.execute(text("SHOW INDEX FROM fileDistribution WHERE Key_name = 'idx_filedist_fileid'")).all()

    db.migrate(db_url)
    assert db.current_revision(db_url) == db.head_revision()
    assert set(_collations(db_url).values()) <= {"utf8mb4_nopad_bin", "utf8mb4_0900_bin"}
    with db_engine.connect() as conn:
        assert len(conn.execute(text("SHOW INDEX FROM fileDistribution WHERE Key_name = 'idx_filedist_fileid'")
                                ).all()) == 1
