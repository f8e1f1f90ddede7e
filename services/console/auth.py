"""Console logins: scrypt password hashes, signed session cookies, CSRF tokens, roles.

Users and roles come from settings (CONSOLE_USERS); the session cookie is signed with
CONSOLE_SECRET (itsdangerous) and carries the user name, a CSRF token and a fingerprint of
the password hash, so changing a password or removing a user ends their sessions. Outside
CONSOLE_DEV a missing secret or an empty user list is a configuration error, said at start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from cofi.settings import ConsoleUser, Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "cofi_session"
LOGIN_COOKIE = "cofi_login"  # double-submit CSRF token of the login form
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_LEN = 2**14, 8, 1, 32
ROLES = ("operator", "reviewer")


class ConsoleConfigError(RuntimeError):
    """The console cannot start safely with these settings (the message says what to set)."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$key` (base64), the format CONSOLE_USERS expects."""
    salt = salt or os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_LEN)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` string; False if malformed."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(key)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want), maxmem=128 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    csrf: str

    @property
    def can_control(self) -> bool:
        return self.role == "operator"


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class Auth:
    """Checks passwords and issues/reads session cookies for one console process."""

    def __init__(self, users: dict[str, ConsoleUser], secret: str, max_age_s: float, secure: bool) -> None:
        self.users = users
        self.max_age_s = max_age_s
        self.secure = secure
        self._sessions = URLSafeTimedSerializer(secret, salt="cofi-console-session")
        self._dummy = hash_password(secrets.token_hex(8))  # same work for unknown names: no user probing by timing

    def login(self, name: str, password: str) -> str | None:
        """A session cookie value, or None for a wrong name or password."""
        user = self.users.get(name)
        ok = verify_password(password, user.password_hash if user else self._dummy)
        if not (ok and user):
            return None
        return self._sessions.dumps({"u": name, "c": secrets.token_urlsafe(24), "p": _fingerprint(user.password_hash)})

    def user_of(self, cookie: str | None) -> User | None:
        """The logged-in user of a session cookie (None: absent, forged, expired or revoked)."""
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=self.max_age_s)
        except BadSignature:
            return None
        user = self.users.get(str(data.get("u")))
        if user is None or data.get("p") != _fingerprint(user.password_hash):
            return None
        return User(str(data["u"]), user.role, str(data["c"]))


def check_csrf(user: User, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(user.csrf.encode(), str(token).encode())


def _dev_state(settings: Settings) -> tuple[str | None, dict[str, ConsoleUser]]:
    """CONSOLE_DEV: a secret and two logins (operator, reviewer) created once under CONSOLE_STATE_DIR,
    the passwords in `credentials.txt` (mode 600) for the developer to read."""
    state = Path(settings.console_state_dir)
    state.mkdir(parents=True, exist_ok=True)
    secret_file, users_file = state / "secret", state / "users.json"
    secret = settings.console_secret.get_secret_value() if settings.console_secret else None
    if secret is None:
        if not secret_file.exists():
            _write_private(secret_file, secrets.token_urlsafe(32))
        secret = secret_file.read_text().strip()
    users = dict(settings.console_users)
    if not users:
        if not users_file.exists():
            passwords = {role: secrets.token_urlsafe(12) for role in ROLES}
            _write_private(state / "credentials.txt",
                           "".join(f"{role} {pw}\n" for role, pw in passwords.items()))
            _write_private(users_file, json.dumps({role: {"role": role, "password_hash": hash_password(pw)}
                                                   for role, pw in passwords.items()}))
        users = {k: ConsoleUser.model_validate(v) for k, v in json.loads(users_file.read_text()).items()}
        log.warning("console: CONSOLE_DEV logins (operator, reviewer); passwords in %s", state / "credentials.txt")
    return secret, users


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def build_auth(settings: Settings) -> Auth:
    """The Auth for these settings; ConsoleConfigError when they would leave the console open or unusable."""
    if settings.console_dev:
        secret, users = _dev_state(settings)
    else:
        secret = settings.console_secret.get_secret_value() if settings.console_secret else None
        users = dict(settings.console_users)
        if not secret:
            raise ConsoleConfigError(
                "CONSOLE_SECRET is not set: the console signs session cookies with it. Set it to a long random "
                "string (`python -m services.console secret` prints one), or CONSOLE_DEV=true on a developer machine")
        if not users:
            raise ConsoleConfigError(
                'CONSOLE_USERS is empty, so nobody could log in. Set it to JSON like {"alice": {"role": "operator", '
                '"password_hash": "..."}} (hash with `python -m services.console hash-password`)')
    if len(secret or "") < 16:
        raise ConsoleConfigError("CONSOLE_SECRET is shorter than 16 characters; use a long random string")
    bad = [f"{name}: {u.password_hash[:12]}..." for name, u in users.items() if not u.password_hash.startswith("scrypt$")]
    if bad:
        raise ConsoleConfigError(f"CONSOLE_USERS password_hash must be a scrypt$... string: {', '.join(bad)}")
    return Auth(users, str(secret), settings.console_session_hours * 3600, settings.console_secure_cookies)
