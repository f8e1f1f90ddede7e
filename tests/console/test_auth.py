"""Console auth: scrypt hashes, signed sessions that end when the password changes, config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from cofi.settings import ConsoleUser, Settings
from services.console.auth import Auth, ConsoleConfigError, build_auth, check_csrf, hash_password, verify_password


def test_scrypt_hash_round_trip_and_rejects_wrong_or_malformed() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$16384$8$1$") and stored != hash_password("correct horse")  # salted
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("x", "md5$abc") and not verify_password("x", "scrypt$1$2")


def test_sessions_are_signed_and_end_when_the_password_changes() -> None:
    users = {"ann": ConsoleUser(role="operator", password_hash=hash_password("pw-ann-123"))}
    auth = Auth(users, "s" * 32, 3600, secure=False)
    assert auth.login("ann", "nope") is None and auth.login("bob", "pw-ann-123") is None
    cookie = auth.login("ann", "pw-ann-123")
    user = auth.user_of(cookie)
    assert user is not None and user.name == "ann" and user.can_control
    assert check_csrf(user, user.csrf) and not check_csrf(user, "other") and not check_csrf(user, None)
    assert Auth(users, "t" * 32, 3600, secure=False).user_of(cookie) is None  # another secret
    users["ann"] = ConsoleUser(role="operator", password_hash=hash_password("new-pass-456"))
    assert auth.user_of(cookie) is None  # password changed: old sessions end
    users["ann"] = ConsoleUser(role="reviewer", password_hash=users["ann"].password_hash)
    demoted = auth.user_of(auth.login("ann", "new-pass-456"))
    assert demoted is not None and not demoted.can_control  # the role is read from settings on each request


def test_missing_secret_or_users_is_a_clear_error_outside_dev(tmp_path: Path) -> None:
    users = {"ann": ConsoleUser(role="reviewer", password_hash=hash_password("pw-ann-123"))}
    with pytest.raises(ConsoleConfigError, match="CONSOLE_SECRET is not set"):
        build_auth(Settings(console_users=users, console_secret=None, console_dev=False))
    with pytest.raises(ConsoleConfigError, match="CONSOLE_USERS is empty"):
        build_auth(Settings(console_users={}, console_secret=SecretStr("x" * 32), console_dev=False))
    with pytest.raises(ConsoleConfigError, match="scrypt"):
        build_auth(Settings(console_users={"a": ConsoleUser(role="operator", password_hash="plain")},
                            console_secret=SecretStr("x" * 32)))
    dev = Settings(console_dev=True, console_state_dir=tmp_path / "console", console_secret=None, console_users={})
    auth = build_auth(dev)
    creds = dict(line.split() for line in (tmp_path / "console" / "credentials.txt").read_text().splitlines())
    assert set(creds) == {"operator", "reviewer"}
    assert (tmp_path / "console" / "credentials.txt").stat().st_mode & 0o077 == 0
    cookie = auth.login("operator", creds["operator"])
    assert build_auth(dev).user_of(cookie) is not None  # the generated secret and users persist across restarts
