"""`python -m services.console`: serve the console on CONSOLE_HOST:CONSOLE_PORT.

    python -m services.console                  # serve
    python -m services.console hash-password    # prompt for a password, print its scrypt hash for CONSOLE_USERS
    python -m services.console secret           # print a random CONSOLE_SECRET
"""

from __future__ import annotations

import argparse
import getpass
import logging
import secrets
import sys

from cofi.settings import get_settings
from services.console.auth import ConsoleConfigError, hash_password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.console", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "hash-password", "secret"))
    args = parser.parse_args(argv)
    if args.command == "secret":
        print(secrets.token_urlsafe(32))
        return 0
    if args.command == "hash-password":
        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            print("error: use at least 8 characters", file=sys.stderr)
            return 2
        print(hash_password(password))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from services.console.app import create_app

    settings = get_settings()
    try:
        app = create_app(settings)
    except ConsoleConfigError as exc:
        print(f"console: error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=settings.console_host, port=settings.console_port, log_level="warning",
                proxy_headers=False, server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
