"""A service whose main loop stops beating for LOOP_STALL_EXIT_S exits, so its supervisor restarts it.

Every call the loops make is bounded (broker calls, transactions, database retries, engine waits beat
the heartbeat every 0.2 s), but a library can still wait forever (librdkafka has done so after a broker
outage). /healthz already says "stale heartbeat"; nothing restarts a process for that under
scripts/supervise.sh or Docker, so the batch would sit still until someone looked. Exiting is safe: a
dead service is what the transactions are built for (its uncommitted batch is re-read by the next
owner), the same as `kill -9`, which the recovery tests show loses and doubles nothing. Before it exits
it writes every thread's stack to stderr (the service log), so the place it hung is on record.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from cofi.pipeline.metrics import Heartbeat

log = logging.getLogger(__name__)

EXIT_STALLED = 70  # EX_SOFTWARE: an internal error, not a setting or a server the operator must fix


class LoopWatchdog:
    """Checks a heartbeat from a daemon thread; past `limit_s` without a beat: stacks, then `exit`."""

    def __init__(self, heartbeat: Heartbeat, limit_s: float, who: str, *,
                 exit: Callable[[int], None] = os._exit, stream: TextIO | None = None) -> None:  # noqa: A002
        self.heartbeat = heartbeat
        self.limit_s = limit_s
        self.who = who
        self.exit = exit
        self.stream = stream
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loop-watchdog", daemon=True)

    @property
    def enabled(self) -> bool:
        return self.limit_s > 0

    def start(self) -> LoopWatchdog:
        if self.enabled:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def stalled_for(self) -> float:
        return time.monotonic() - self.heartbeat.last

    def check(self) -> bool:
        """True (after writing the stacks and calling `exit`) when the loop is past its limit."""
        stalled = self.stalled_for()
        if not self.enabled or stalled < self.limit_s:
            return False
        log.critical("%s: the main loop has not moved for %.0fs (LOOP_STALL_EXIT_S=%.0f); every thread's stack "
                     "follows, then the process exits with code %d for its supervisor to restart it (work not "
                     "committed is re-read by the next owner)", self.who, stalled, self.limit_s, EXIT_STALLED)
        stream = self.stream or sys.stderr
        stream.flush()
        faulthandler.dump_traceback(file=stream, all_threads=True)
        stream.flush()
        self.exit(EXIT_STALLED)
        return True

    def _run(self) -> None:
        every = min(5.0, max(0.1, self.limit_s / 10))
        while not self._stop.wait(every):
            if self.check():
                return
