"""MySQL/MariaDB over TLS with per-role users, on a private MariaDB started with MARIADB_TLS=1: migrations
run as the DDL user, the tracker writes as a DML-only user, the CLI reads as a SELECT-only user, each one
`REQUIRE SSL`; what a role may not do, a plaintext connection and a wrong CA are refused."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from typer.testing import CliRunner

from cofi.db import engine_for
from cofi.devtools.pipeline import REPO
from cofi.ops.admin import db_roles, migrate_database
from cofi.ops.cli import app
from cofi.pipeline.stages import STAGES
from cofi.settings import Settings
from tests.support.harness import ThreadedWorkers
from tests.support.recovery import PrivateMariaDB, running
from tests.support.tracker import RunningTracker, batch_start, submit, wait_status

pytestmark = pytest.mark.integration


class TlsMariaDB(PrivateMariaDB):
    def ports_env(self) -> dict[str, str]:
        return {**super().ports_env(), "MARIADB_TLS": "1"}

    @property
    def ca(self) -> Path:
        return self.dir / "tls" / "ca.pem"

    def admin_sql(self, sql: str) -> None:
        """SQL as the server's administrator (the OS user over the private socket)."""
        subprocess.run(["bash", str(REPO / "scripts" / "mariadb.sh"), "client", "-e", sql], env=self.env, cwd=REPO,
                       check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def server() -> Iterator[TlsMariaDB]:
    for db in running(TlsMariaDB()):
        for host in ("%", "localhost", "127.0.0.1"):  # cofi plays the DBA here
            db.admin_sql(f"GRANT ALL PRIVILEGES ON *.* TO 'cofi'@'{host}' WITH GRANT OPTION")
        yield db


def _code(exc: BaseException) -> int:
    return int(getattr(getattr(exc, "orig", None), "args", [0])[0])


def test_roles_over_tls_from_migration_to_the_cli(server: TlsMariaDB, kafka_bootstrap: str, topic_prefix: str,
                                                  tmp_path: Path) -> None:
    name = f"cofi_sec_{uuid.uuid4().hex[:8]}"
    dba = Settings(database_url=f"mysql+pymysql://cofi:cofi@127.0.0.1:{server.port}/{name}", database_ssl_ca=server.ca)
    urls = db_roles(dba, tmp_path / "secrets", require_ssl=True)
    assert {u.split("://")[1].split(":")[0] for u in urls.values()} == {"cofi_migrate", "cofi_tracker", "cofi_reader"}
    s = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix, topic_partitions=3,
                 database_url=urls["tracker"], database_read_url=urls["reader"], database_migrate_url=urls["migrate"],
                 database_ssl_ca=server.ca, artifact_root=tmp_path / "art", metrics_port=0, worker_instance=name,
                 commit_every_messages=10, commit_every_ms=100, session_timeout_ms=10_000)
    migrate_database(s)  # DDL as cofi_migrate, over TLS

    tracker = engine_for(s, "tracker")
    reader = engine_for(s, "reader")
    try:
        with tracker.connect() as c:
            assert c.execute(text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).all()[0][1], "not encrypted"
        with RunningTracker(s), ThreadedWorkers(s, list(STAGES)):
            submit(s, batch_start(9601, 4))
            row = wait_status(reader, 9601, ("Completed",))
        assert row["completedFiles"] == 4
        result = CliRunner().invoke(app, ["status", "9601"], env={"DATABASE_READ_URL": urls["reader"],
                                                                  "DATABASE_URL": urls["tracker"],
                                                                  "DATABASE_SSL_CA": str(server.ca)})
        assert result.exit_code == 0 and "Completed" in result.output, result.output

        with pytest.raises(OperationalError) as denied, tracker.begin() as c:  # the tracker has no DDL
            c.execute(text("CREATE TABLE intruder (id INT)"))
        assert _code(denied.value) == 1142
        with pytest.raises((OperationalError, ProgrammingError)) as denied, tracker.begin() as c:
            c.execute(text("DROP TABLE batchStatus"))
        assert _code(denied.value) == 1142
        with pytest.raises(OperationalError) as denied, reader.begin() as c:  # the reader cannot write
            c.execute(text("UPDATE batchStatus SET status = 'Failed' WHERE id = 9601"))
        assert _code(denied.value) == 1142
        with reader.connect() as c:
            assert c.execute(text("SELECT status FROM batchStatus WHERE id = 9601")).scalar() == "Completed"
    finally:
        tracker.dispose()
        reader.dispose()

    plaintext = create_engine(urls["tracker"], connect_args={"ssl_disabled": True})  # the user REQUIREs SSL
    with pytest.raises(OperationalError) as refused, plaintext.connect():
        pass
    assert _code(refused.value) == 1045
    plaintext.dispose()

    other = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other CA",
                    "-keyout", str(tmp_path / "other.key"), "-out", str(other)], check=True, capture_output=True)
    wrong_ca = engine_for(s.model_copy(update={"database_ssl_ca": other}), "tracker")
    with pytest.raises(OperationalError, match="(?i)certificate verify failed"), wrong_ca.connect():
        pass
    wrong_ca.dispose()
