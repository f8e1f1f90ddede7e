"""Per-role database users (`python -m cofi.ops.admin db-roles --secrets DIR`, run with a DBA's DATABASE_URL).

- `cofi_migrate`: every privilege on the cofi database, DDL included: migrations only (DATABASE_MIGRATE_URL);
- `cofi_tracker`: SELECT, INSERT, UPDATE, DELETE: the tracker, the only writer (DATABASE_URL);
- `cofi_reader`: SELECT: the CLI and the console (DATABASE_READ_URL).
With `--require-ssl` each user is `REQUIRE SSL`: the server refuses it over plaintext TCP.
Passwords come from COFI_DB_PASSWORD_<ROLE> (MIGRATE, TRACKER, READER: docker compose's `.env`), else
`<DIR>/<user>.password` (random, mode 0600, made once); re-running is idempotent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from cofi.errors import AdminError
from cofi.secretfile import secret_in


@dataclass(frozen=True)
class DbRole:
    role: str  # cofi.db.Role
    user: str
    privileges: str
    setting: str


ROLES: tuple[DbRole, ...] = (
    DbRole("migrate", "cofi_migrate", "ALL PRIVILEGES", "DATABASE_MIGRATE_URL"),
    DbRole("tracker", "cofi_tracker", "SELECT, INSERT, UPDATE, DELETE", "DATABASE_URL"),
    DbRole("reader", "cofi_reader", "SELECT", "DATABASE_READ_URL"),
)


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise AdminError(f"database or user name {name!r}: letters, digits and _ only")
    return name


def password_for(role: DbRole, secrets_dir: Path | None) -> str:
    given = os.environ.get(f"COFI_DB_PASSWORD_{role.role.upper()}", "")
    if given:
        return given
    if secrets_dir is None:
        raise AdminError(f"no password for {role.user}: set COFI_DB_PASSWORD_{role.role.upper()} or give --secrets DIR")
    return secret_in(secrets_dir, role.user)


def provision(admin: Engine, database: str, secrets_dir: Path | None, *, host: str = "%",
              require_ssl: bool = False) -> dict[str, str]:
    """Create/update the three users with their grants on `database`; {role: URL with its password}."""
    db = _quote(database)
    if "'" in host or "\\" in host:
        raise AdminError(f"host pattern {host!r} may not contain quotes")
    urls: dict[str, str] = {}
    base = make_url(admin.url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        for r in ROLES:
            user, password = _quote(r.user), password_for(r, secrets_dir)
            conn.execute(text(f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY :pw"), {"pw": password})
            conn.execute(text(f"ALTER USER '{user}'@'{host}' IDENTIFIED BY :pw REQUIRE "
                              f"{'SSL' if require_ssl else 'NONE'}"), {"pw": password})
            conn.execute(text(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{user}'@'{host}'"))
            conn.execute(text(f"GRANT {r.privileges} ON `{db}`.* TO '{user}'@'{host}'"))
            urls[r.role] = base.set(username=user, password=password, database=db).render_as_string(hide_password=False)
    return urls
