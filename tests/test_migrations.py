"""Alembic migrations on a real MariaDB/MySQL: the seed's denoiseDone migration, its rollback,
and `cofi.db` tables that cannot drift from the migrated schema."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from cofi import db
from cofi.errors import AdminError
from cofi.ops.admin import create_database, migrate_database
from cofi.settings import Settings

pytestmark = pytest.mark.integration

HEAD = db.head_revision()  # the last migration (later migrations come after the seed's 0002)


def _denoise_column_and_index(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            cols = conn.execute(text("SHOW COLUMNS FROM fileDistribution LIKE 'denoiseDone'")).all()
            idx = conn.execute(
                text("SHOW INDEX FROM fileDistribution WHERE Key_name = 'idx_filedist_batch_denoise'")
            ).all()
        return len(cols), len(idx)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert db.current_revision(db_url) == HEAD
    assert _denoise_column_and_index(db_url) == (1, 2)  # one column; index over (batchId, denoiseDone)

    db.downgrade(db_url, "0001_initial")
    assert db.current_revision(db_url) == "0001_initial"
    assert _denoise_column_and_index(db_url) == (0, 0)

    db.migrate(db_url)
    assert db.current_revision(db_url) == HEAD
    assert _denoise_column_and_index(db_url) == (1, 2)


def test_denoise_done_is_the_seeds_column(db_url: str) -> None:
    """`DESCRIBE fileDistribution` shows `denoiseDone TINYINT(1) DEFAULT 0`, right after `file`."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SHOW COLUMNS FROM fileDistribution")).mappings().all()
    engine.dispose()
    names = [r["Field"] for r in rows]
    assert names[names.index("file") + 1:names.index("file") + 1 + len(db.DONE_COLUMNS)] == list(db.DONE_COLUMNS)
    col = next(r for r in rows if r["Field"] == "denoiseDone")
    assert col["Type"].lower() == "tinyint(1)"
    assert str(col["Default"]) == "0"


def _columns(url: str, table: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text(f"SHOW COLUMNS FROM {table}"))]
    finally:
        engine.dispose()


def test_redact_stage_columns_and_their_downgrade(db_url: str, db_engine) -> None:
    """0004 puts redactDone / redactStatus after stt's (registry order); existing rows get 0 / Pending;
    its downgrade removes exactly those two columns."""
    db.downgrade(db_url, "0002_denoise_done")
    assert "redactDone" not in _columns(db_url, "fileDistribution")
    with db_engine.begin() as conn:
        conn.execute(text("INSERT INTO fileDistribution (batchId, fileId, file, sttDone) VALUES (7, 'a', 'a.wav', 1)"))
        conn.execute(text("INSERT INTO batchStatus (id) VALUES (7)"))
    db.migrate(db_url)
    fd, bs = _columns(db_url, "fileDistribution"), _columns(db_url, "batchStatus")
    assert fd[fd.index("sttDone") + 1] == "redactDone" and fd[fd.index("redactDone") + 1] == "llm1Done"
    assert bs[bs.index("sttStatus") + 1] == "redactStatus" and bs[bs.index("redactStatus") + 1] == "llm1Status"
    with db_engine.connect() as conn:
        assert tuple(conn.execute(text("SELECT sttDone, redactDone FROM fileDistribution WHERE batchId = 7")).one()) == (1, 0)
        assert conn.execute(text("SELECT redactStatus FROM batchStatus WHERE id = 7")).scalar() == "Pending"
    db.downgrade(db_url, "0002_denoise_done")
    assert set(fd) - set(_columns(db_url, "fileDistribution")) == {"redactDone"}
    assert set(bs) - set(_columns(db_url, "batchStatus")) == {"redactStatus"}
    db.migrate(db_url)
    assert db.current_revision(db_url) == HEAD


def test_downgrade_to_base_removes_every_table(db_url: str) -> None:
    db.downgrade(db_url, "base")
    engine = create_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    db.migrate(db_url)
    assert db.current_revision(db_url) == HEAD


def test_tables_match_migrated_schema(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        insp = inspect(engine)
        assert set(insp.get_table_names()) == set(db.metadata.tables) | {"alembic_version"}
        for name, table in db.metadata.tables.items():
            live = insp.get_columns(name)
            assert [c["name"] for c in live] == [c.name for c in table.columns], name
            assert {c["name"]: c["nullable"] for c in live} == {c.name: c.nullable for c in table.columns}, name
            assert insp.get_pk_constraint(name)["constrained_columns"] == [c.name for c in table.primary_key], name
            live_idx = {i["name"]: tuple(i["column_names"]) for i in insp.get_indexes(name) if not i.get("unique")}
            model_idx = {i.name: tuple(c.name for c in i.columns) for i in table.indexes if not i.unique}
            assert live_idx == model_idx, name
            live_uq = {tuple(u["column_names"]) for u in insp.get_unique_constraints(name)}
            model_uq = {tuple(c.name for c in u.columns) for u in table.constraints if u.__class__.__name__ == "UniqueConstraint"}
            model_uq |= {(c.name,) for c in table.columns if c.unique}
            assert live_uq == model_uq, name
    finally:
        engine.dispose()


def test_seed_monitoring_queries_run_unchanged(db_engine) -> None:
    """The seed's "Monitor These Metrics" queries give the right numbers on our schema."""
    fd, pl, bel = db.file_distribution, db.processing_logs, db.batch_execution_log
    with db_engine.begin() as conn:
        conn.execute(fd.insert().values(batchId=42, fileId="a", file="a.wav", denoiseDone=1, ivrDone=1, lidDone=1))
        conn.execute(fd.insert().values(batchId=42, fileId="b", file="b.wav", denoiseDone=1))
        conn.execute(fd.insert().values(batchId=43, fileId="a", file="a.wav", denoiseDone=1))
        conn.execute(pl.insert(), [
            {"eventId": "e1", "batch_id": "42", "file": "b.wav", "stage_name": "ivr", "status": "failed", "error": "x"},
            {"eventId": "e2", "batch_id": "42", "file": "a.wav", "stage_name": "ivr", "status": "success", "error": None},
        ])
        conn.execute(bel.insert().values(batchId=42, stage="ivr", eventType="stage_start", dedupKey="k1"))
        conn.execute(bel.insert().values(batchId=42, stage="ivr", eventType="file_error", file="b.wav", dedupKey="k2"))
    with db_engine.connect() as conn:
        counts = conn.execute(text(
            "SELECT SUM(denoiseDone) as denoise_count, SUM(ivrDone) as ivr_count, SUM(lidDone) as lid_count, "
            "SUM(sttDone) as stt_count, SUM(llm1Done) as llm1_count, SUM(llm2Done) as llm2_count, "
            "COUNT(*) as total_files FROM fileDistribution WHERE batchId = 42")).one()
        assert tuple(int(v) for v in counts) == (2, 1, 1, 0, 0, 0, 2)
        errors = conn.execute(text(
            "SELECT stage_name, COUNT(*) as error_count FROM processing_logs "
            "WHERE batch_id = '42' AND status = 'failed' GROUP BY stage_name")).all()
        assert [tuple(r) for r in errors] == [("ivr", 1)]
        summary = conn.execute(text(
            "SELECT stage, eventType, COUNT(*) as event_count FROM batchExecutionLog "
            "WHERE batchId = 42 GROUP BY stage, eventType ORDER BY stage")).all()
        assert sorted(tuple(r) for r in summary) == [("ivr", "file_error", 1), ("ivr", "stage_start", 1)]
        assert conn.execute(text("SHOW COLUMNS FROM fileDistribution LIKE 'denoiseDone'")).all()


def test_admin_migrate_creates_missing_database(database_server_url: str) -> None:
    name = f"cofi_test_{uuid.uuid4().hex[:12]}"
    url = make_url(database_server_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate_database(Settings(database_url=url))
        assert db.current_revision(url) == HEAD
        assert create_database(url) is False  # second run: exists, left alone
        migrate_database(Settings(database_url=url))  # idempotent
    finally:
        engine = create_engine(database_server_url)
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


def test_admin_migrate_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(AdminError, match="unreachable"):
        migrate_database(Settings(database_url="mysql+pymysql://cofi:cofi@127.0.0.1:1/cofi"))


def test_make_engine_reads_committed(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.get_isolation_level() == "READ COMMITTED"
            assert conn.execute(text("SELECT COUNT(*) FROM fileDistribution")).scalar() == 0
    finally:
        engine.dispose()
