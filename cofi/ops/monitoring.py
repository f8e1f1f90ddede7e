"""The seed's operator SQL ("Monitor These Metrics" and "Support"), run unchanged for one batch.

The query texts are copied verbatim from the seed (only the markdown indentation of the
Support blocks is removed); operators paste them into `mysql`, so they must keep working
against our schema. `<YOUR_BATCH_ID>` is substituted literally with the integer id: the
seed quotes it where the column is a string (`processing_logs.batch_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

PLACEHOLDER = "<YOUR_BATCH_ID>"

# --- Monitor These Metrics -------------------------------------------------------------

STAGE_COMPLETION_SQL = """\
-- Check how many files completed each stage
SELECT 
    SUM(denoiseDone) as denoise_count,
    SUM(ivrDone) as ivr_count,
    SUM(lidDone) as lid_count,
    SUM(sttDone) as stt_count,
    SUM(llm1Done) as llm1_count,
    SUM(llm2Done) as llm2_count,
    COUNT(*) as total_files
FROM fileDistribution 
WHERE batchId = <YOUR_BATCH_ID>;
"""

ERROR_COUNTS_SQL = """\
-- Check error counts per stage
SELECT 
    stage_name,
    COUNT(*) as error_count
FROM processing_logs
WHERE batch_id = '<YOUR_BATCH_ID>' AND status = 'failed'
GROUP BY stage_name;
"""

EXECUTION_LOG_SUMMARY_SQL = """\
-- Check batch execution log summary
SELECT 
    stage,
    eventType,
    COUNT(*) as event_count
FROM batchExecutionLog
WHERE batchId = <YOUR_BATCH_ID>
GROUP BY stage, eventType
ORDER BY stage;
"""

# --- Support -----------------------------------------------------------------------------

DENOISE_COLUMN_SQL = """\
SHOW COLUMNS FROM fileDistribution LIKE 'denoiseDone';
-- Should return 1 row
"""

RECENT_FAILURES_SQL = """\
SELECT * FROM processing_logs 
WHERE batch_id = '<YOUR_BATCH_ID>' AND status = 'failed' 
ORDER BY created_at DESC LIMIT 20;
"""

BATCH_STATUS_SQL = """\
SELECT * FROM batchStatus WHERE id = <YOUR_BATCH_ID>;
"""


@dataclass(frozen=True)
class Query:
    title: str
    section: str
    sql: str


MONITOR_QUERIES: tuple[Query, ...] = (
    Query("Files completed per stage", "Monitor These Metrics", STAGE_COMPLETION_SQL),
    Query("Error counts per stage", "Monitor These Metrics", ERROR_COUNTS_SQL),
    Query("Batch execution log summary", "Monitor These Metrics", EXECUTION_LOG_SUMMARY_SQL),
)
SUPPORT_QUERIES: tuple[Query, ...] = (
    Query("denoiseDone column present (should return 1 row)", "Support", DENOISE_COLUMN_SQL),
    Query("Latest failures (20)", "Support", RECENT_FAILURES_SQL),
    Query("Batch status", "Support", BATCH_STATUS_SQL),
)
ALL_QUERIES: tuple[Query, ...] = MONITOR_QUERIES + SUPPORT_QUERIES


@dataclass
class QueryResult:
    query: Query
    sql: str
    columns: list[str]
    rows: list[tuple[Any, ...]]


def for_batch(sql: str, batch_id: int) -> str:
    """The seed's text with every `<YOUR_BATCH_ID>` replaced by the integer (quoting untouched)."""
    return sql.replace(PLACEHOLDER, str(int(batch_id)))


def run_query(conn: Connection, query: Query, batch_id: int) -> QueryResult:
    """Executed as raw driver SQL, so nothing in the text is reinterpreted (no bind parameters)."""
    sql = for_batch(query.sql, batch_id)
    result = conn.exec_driver_sql(sql)
    return QueryResult(query, sql, list(result.keys()), [tuple(r) for r in result.fetchall()])


def run_all(engine: Engine, batch_id: int, queries: tuple[Query, ...] = ALL_QUERIES) -> list[QueryResult]:
    with engine.connect() as conn:
        return [run_query(conn, q, batch_id) for q in queries]
