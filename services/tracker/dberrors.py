"""Which database errors say "the database cannot be used now" (retry the whole poll later) rather than
"this message's rows are refused" (the message is set aside, the others go on).

Retrying a deterministic error stalls every batch forever; setting aside messages because the server is
down, read-only, unmigrated or refuses our user would reject good batches. So: the server's state, by
driver error code, and lost connections are the first kind; everything else is the message's.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# MySQL / MariaDB error codes of a server that cannot serve us now (not of bad rows)
UNUSABLE_CODES = frozenset({
    1040,  # too many connections
    1044, 1045, 1142, 1143,  # access denied (database, user, table, column)
    1046, 1049, 1146, 1054,  # no database, unknown database, no such table, unknown column: not migrated
    1053,  # server shutdown in progress
    1205, 1213,  # lock wait timeout, deadlock: try the poll again
    1290, 1836,  # read-only server (failover)
    1927,  # connection killed (MariaDB)
    2002, 2003, 2005, 2006, 2013, 2055,  # cannot connect, server gone away, connection lost
    3024, 1969,  # query timed out (MySQL max_execution_time, MariaDB max_statement_time)
    4031,  # disconnected by the server for inactivity (MySQL 8)
})


def database_unusable(exc: BaseException) -> bool:
    """True when `exc` means the database cannot be used now, so the poll is retried as a whole."""
    if isinstance(exc, DisconnectionError | PoolTimeout | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        args = getattr(exc.orig, "args", ())
        return bool(args) and isinstance(args[0], int) and args[0] in UNUSABLE_CODES
    return isinstance(exc, ConnectionError)
