"""Database tables at migration head, engine factory and Alembic helpers.

The `Table` objects mirror `migrations/versions/*` exactly (a test compares them with a
migrated database); they exist for queries, never for `create_all`: Alembic owns the DDL.
Names are the seed's, because operators' SQL depends on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    func,
    select,
    text,
)
from sqlalchemy.dialects.mysql import CHAR, DATETIME, LONGBLOB, MEDIUMTEXT, TINYINT

from cofi.pipeline.stages import REGISTRY

REPO_ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = REPO_ROOT / "alembic.ini"
MIGRATIONS_DIR = REPO_ROOT / "migrations"

# One flag and one status column per stage of the registry, in stage order (the seed's names).
DONE_COLUMNS: tuple[str, ...] = tuple(s.done_column for s in REGISTRY)
STAGE_STATUS_COLUMNS: tuple[str, ...] = tuple(s.status_column for s in REGISTRY)
# 0002 adds denoiseDone as the seed wrote it (`TINYINT(1) DEFAULT 0 AFTER file`): nullable.
NULLABLE_DONE_COLUMNS = frozenset({"denoiseDone"})

NOW3 = text("CURRENT_TIMESTAMP(3)")
NOW3_ON_UPDATE = text("CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)")

metadata = MetaData()


def _ts(name: str, *, nullable: bool = False, on_update: bool = False, default: bool = True) -> Column:
    server_default = (NOW3_ON_UPDATE if on_update else NOW3) if default else None
    return Column(name, DATETIME(fsp=3), nullable=nullable, server_default=server_default)


def _flag(name: str, nullable: bool = False) -> Column:
    return Column(name, TINYINT(1), nullable=nullable, server_default=text("0"))


file_distribution = Table(
    "fileDistribution", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("batchId", BigInteger, nullable=False),
    Column("fileId", String(40), nullable=False),
    Column("file", String(512), nullable=False),  # binary, NO PAD (0003): names compare byte for byte
    *(_flag(c, nullable=c in NULLABLE_DONE_COLUMNS) for c in DONE_COLUMNS),
    Column("worker", String(128)),
    Column("gpu", String(64)),
    Column("status", String(32), nullable=False, server_default="Pending"),
    Column("currentStage", String(16)),
    Column("failedStage", String(16)),
    Column("error", Text),
    Column("metadata", JSON),
    Column("generation", Integer, nullable=False, server_default=text("0")),
    Column("lastEvent", LONGBLOB),
    _ts("createdAt"),
    _ts("updatedAt", on_update=True),
    UniqueConstraint("batchId", "file", name="uq_filedist_batch_file"),
    UniqueConstraint("batchId", "fileId", name="uq_filedist_batch_fileid"),
    Index("idx_filedist_batch_status", "batchId", "status"),
    Index("idx_filedist_batch_denoise", "batchId", "denoiseDone"),
    Index("idx_filedist_fileid", "fileId"),  # the file of an unreadable event, from its key
)

batch_status = Table(
    "batchStatus", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("status", String(32), nullable=False, server_default="Pending"),
    *(Column(c, String(16), nullable=False, server_default="Pending") for c in STAGE_STATUS_COLUMNS),
    Column("stages", String(128), nullable=False, server_default=""),
    Column("totalFiles", Integer, nullable=False, server_default=text("0")),
    Column("completedFiles", Integer, nullable=False, server_default=text("0")),
    Column("failedFiles", Integer, nullable=False, server_default=text("0")),
    Column("contentHash", CHAR(64)),
    Column("reason", Text),
    Column("callback", String(1024)),
    Column("config", JSON),
    _ts("createdAt"),
    _ts("updatedAt", on_update=True),
    _ts("startedAt", nullable=True, default=False),
    _ts("completedAt", nullable=True, default=False),
)

processing_logs = Table(
    "processing_logs", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("eventId", String(64), nullable=False, unique=True),
    Column("batch_id", String(32), nullable=False),
    Column("file", String(512), nullable=False),
    Column("stage_name", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # 'success' | 'failed'
    Column("error", Text),
    Column("duration", Float),  # seconds
    Column("worker", String(128)),
    _ts("created_at"),
    Index("idx_plogs_batch_status", "batch_id", "status"),
    Index("idx_plogs_batch_file_stage", "batch_id", "file", "stage_name"),
)

batch_execution_log = Table(
    "batchExecutionLog", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("batchId", BigInteger, nullable=False),
    Column("stage", String(16)),
    Column("eventType", String(32), nullable=False),
    Column("file", String(512)),
    Column("details", Text),
    Column("dedupKey", String(191), nullable=False, unique=True),
    _ts("createdAt"),
    Index("idx_bel_batch_stage_type", "batchId", "stage", "eventType"),
)

audit_result = Table(
    "auditResult", metadata,
    Column("batchId", BigInteger, primary_key=True, autoincrement=False),
    Column("fileId", String(40), primary_key=True),
    Column("file", String(512), nullable=False),
    Column("language", String(16)),
    Column("languageProbability", Float),
    Column("ivrEndSec", Float),
    Column("transcriptPath", String(1024)),
    Column("transcript", MEDIUMTEXT),
    Column("speech", JSON),
    Column("answers", JSON),
    Column("normalizedAnswers", JSON),
    Column("ruleResults", JSON),
    Column("tradeChecks", JSON),
    Column("score", Float),
    Column("verdict", String(16)),
    Column("reasons", JSON),
    _ts("updatedAt", on_update=True),
)

webhook_outbox = Table(
    "webhookOutbox", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("batchId", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("url", String(1024), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("lastError", Text),
    _ts("createdAt"),
    _ts("sentAt", nullable=True, default=False),
    _ts("nextAttemptAt", nullable=True, default=False),  # 0003: backoff; NULL = due now
    UniqueConstraint("batchId", "kind", name="uq_webhook_batch_kind"),
    Index("idx_webhook_due", "status", "nextAttemptAt"),
)

# The tracker's running counts per batch (name: total, completed, failed, cancelled, done:<stage>,
# failed:<stage>), so progress needs no scan of fileDistribution (0006_scale_batch_counts).
batch_file_counts = Table(
    "batchFileCounts", metadata,
    Column("batchId", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(40), primary_key=True),
    Column("n", BigInteger, nullable=False, server_default=text("0")),
)


Role = Literal["tracker", "reader", "migrate"]


VERDICTS = ("critical_fail", "fail", "review", "pass")  # as llm2 gives them, the ones to act on first


def verdict_counts(conn: Connection, batch_id: int) -> dict[str, int]:
    """Files of the batch per verdict (those without one yet left out), in VERDICTS order, others after: the
    CLI's status, the console's filter and the tracker's batch_complete webhook read it."""
    ar = audit_result
    counts = dict(conn.execute(select(ar.c.verdict, func.count()).where(ar.c.batchId == batch_id,
                                                                      ar.c.verdict.is_not(None))
                               .group_by(ar.c.verdict)).all())
    return {v: int(counts.pop(v, 0)) for v in VERDICTS} | {str(k): int(n) for k, n in counts.items()}


def tls_args(settings: Any) -> dict[str, Any]:
    """PyMySQL's TLS arguments from DATABASE_SSL_* (none without DATABASE_SSL_CA): the server certificate
    is verified against that CA, and its name against the URL's host unless DATABASE_SSL_VERIFY_IDENTITY=false."""
    if settings.database_ssl_ca is None:
        return {}
    args: dict[str, Any] = {"ssl_ca": str(settings.database_ssl_ca), "ssl_verify_cert": True,
                            "ssl_verify_identity": bool(settings.database_ssl_verify_identity)}
    if settings.database_ssl_cert is not None:
        args["ssl_cert"] = str(settings.database_ssl_cert)
    if settings.database_ssl_key is not None:
        args["ssl_key"] = str(settings.database_ssl_key)
    return args


def role_url(settings: Any, role: Role) -> str:
    """The URL of a database role: the tracker writes (DATABASE_URL), the CLI and the console read
    (DATABASE_READ_URL), migrations change the schema (DATABASE_MIGRATE_URL); each defaults to DATABASE_URL."""
    url = {"reader": settings.database_read_url, "migrate": settings.database_migrate_url}.get(role)
    return str(url or settings.database_url)


def engine_for(settings: Any, role: Role, **kwargs: Any) -> Engine:
    """`make_engine` for one role of `settings`, with its TLS arguments."""
    connect_args = {**tls_args(settings), **kwargs.pop("connect_args", {})}
    return make_engine(role_url(settings, role), connect_args=connect_args, **kwargs)


def make_engine(url: str, **kwargs: object) -> Engine:
    """Engine for the tracker/CLI: pre-ping and recycle survive MySQL's idle disconnects;
    READ COMMITTED keeps batched upserts from taking gap locks."""
    opts: dict[str, object] = {
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "isolation_level": "READ COMMITTED",
    }
    opts.update(kwargs)
    return create_engine(url, **opts)


def alembic_config(url: str):  # -> alembic.config.Config (import kept lazy: services never migrate)
    """Alembic config pointing at this repo's migrations and the given database."""
    from alembic.config import Config

    cfg = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.exists() else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False  # keep the caller's logging (pytest, services) intact
    return cfg


def migrate(url: str, revision: str = "head", connect_args: dict[str, Any] | None = None) -> None:
    """Upgrade the database at `url` to `revision` (`connect_args`: TLS, see `tls_args`)."""
    from alembic import command

    cfg = alembic_config(url)
    cfg.attributes["connect_args"] = connect_args or {}
    command.upgrade(cfg, revision)


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at `url` to `revision` (e.g. "0001_initial", "base")."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration (what `migrate` upgrades to)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("mysql+pymysql://")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    """The revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
