"""scripts/mariadb.sh as an operator meets it: `start` on a running server of this checkout adopts it, and a
server whose data directory was deleted under it (the checkout removed, then cloned again to the same
path) is replaced, not adopted: adopted, it answered and failed every CREATE with errno 2."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import create_engine, text

from tests.support.recovery import PrivateMariaDB, pid_gone

pytestmark = pytest.mark.integration


def test_start_adopts_its_own_server_and_replaces_one_whose_data_directory_was_deleted() -> None:
    db = PrivateMariaDB()
    try:
        db.start()
        first = int((db.dir / "run" / "mariadb.pid").read_text().strip())
        assert "already running" in db.start()
        assert (db.dir / "run" / "mariadb.pid").read_text().strip() == str(first)

        shutil.rmtree(db.dir)  # the checkout removed while its server runs, then the same path again
        db.dir.mkdir()
        said = db.start()
        assert f"pid {first} serves a data directory that was deleted" in said, said
        assert pid_gone(first)
        second = int((db.dir / "run" / "mariadb.pid").read_text().strip())
        assert second != first
        engine = create_engine(db.server_url)
        try:
            with engine.begin() as c:  # what failed with errno 2 on the adopted server
                c.execute(text("CREATE DATABASE cofi_orphan_check"))
                assert c.execute(text("SHOW DATABASES LIKE 'cofi_orphan_check'")).scalar() == "cofi_orphan_check"
        finally:
            engine.dispose()
    finally:
        db.remove()
