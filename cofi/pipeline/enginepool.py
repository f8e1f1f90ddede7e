"""Where a stage worker runs its engine: a few daemon threads, with a deadline per file and a journal of
the files a worker was working on when it died.

A hung engine call cannot be killed in Python. Past its deadline the worker fails the file and abandons
the call: its place goes to the other calls (the stage goes on at full concurrency) and, the threads
being daemons, a call that never returns never keeps the process from stopping. A call waiting out a
retry backoff gives its place up too, so one batch's failing files never idle the stage. A file that kills its worker
outright (the kernel's OOM killer, a crash in native code) is no exception the worker can catch; the
journal counts such deaths so the next worker fails the file instead of dying the same way.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cofi.errors import DeadlineExceeded

log = logging.getLogger(__name__)

HUNG_CALLS_UNHEALTHY = 4  # abandoned engine calls still running: /healthz asks for a restart


class EnginePool:
    """At most `size` engine calls at once, on daemon threads made as needed. A call waiting out a retry
    backoff (`waiting()`) gives its place up meanwhile, so one batch's retries never idle the stage; a call
    past its deadline can be abandoned (its place is given back; its thread finishes or hangs on its own)."""

    def __init__(self, size: int, name: str, spare_threads: int = 32) -> None:
        self.size = max(1, size)
        self.name = name
        self.max_threads = self.size + spare_threads  # the spares wait out backoffs
        self.slots = threading.Semaphore(self.size)
        self.tasks: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.started: dict[Future[Any], float] = {}
        self.holding: set[Future[Any]] = set()  # calls that hold a place now
        self.given_up: set[Future[Any]] = set()
        self.abandoned = 0  # calls given up on since start (threads that may still hang)
        self.live = self.idle = self.queued = 0  # threads; of them waiting for a task; tasks not yet taken
        self.away = 0  # threads whose call gave its place up: waiting out a backoff, or abandoned
        self.numbers = itertools.count(1)
        self.local = threading.local()  # the call this thread runs

    def _grow(self) -> None:
        """A thread for every task no idle thread will take, up to one per place plus one per call that gave
        its place up (under self.lock): a task queued behind a call that hangs or waits out a backoff must
        still get a thread, and no more threads than places run otherwise (a thread per queued task of a
        500-file micro-batch, all but one waiting for the place, cost a fast stage half its CPU in handoffs)."""
        while self.queued > self.idle and self.live < min(self.max_threads, self.size + self.away):
            self.live += 1
            self.idle += 1
            threading.Thread(target=self._run, name=f"{self.name}-{next(self.numbers)}", daemon=True).start()

    def _run(self) -> None:
        while True:
            item = self.tasks.get()
            with self.lock:
                self.idle -= 1
                self.queued -= item is not None
            if item is None:
                break
            fut, fn, args = item
            if not fut.set_running_or_notify_cancel():
                with self.lock:
                    self.idle += 1
                continue
            self.slots.acquire()
            with self.lock:
                self.started[fut] = time.monotonic()
                self.holding.add(fut)
            self.local.fut = fut
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                fut.set_exception(exc)
            else:
                fut.set_result(result)
            with self.lock:
                self.started.pop(fut, None)
                held = fut in self.holding
                self.holding.discard(fut)
                replaced = fut in self.given_up
                self.given_up.discard(fut)
                self.away -= replaced
            if held:
                self.slots.release()
            if replaced:
                break  # abandoned: its place went to the others; this thread need not stay
            with self.lock:
                self.idle += 1
        with self.lock:
            self.live -= 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        with self.lock:
            self.queued += 1
            self._grow()
        self.tasks.put((fut, fn, args))
        return fut

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Around a wait inside a call (a retry's backoff): its place goes to another call meanwhile.
        DeadlineExceeded afterwards when the call was abandoned while it waited."""
        fut = getattr(self.local, "fut", None)
        with self.lock:
            held = fut in self.holding
            self.holding.discard(fut)
            self.away += held
            self._grow()
        if held:
            self.slots.release()
        try:
            yield
        finally:
            with self.lock:
                self.away -= held
            if held:
                self.slots.acquire()
                with self.lock:
                    gone = fut in self.given_up
                    if not gone:
                        self.holding.add(fut)
                if gone:
                    self.slots.release()
                    raise DeadlineExceeded("abandoned at its deadline while it waited to retry")

    def running_for(self, fut: Future[Any]) -> float | None:
        """Seconds since the call first got its place; None while it waits for one (or is done)."""
        with self.lock:
            started = self.started.get(fut)
        return None if started is None else time.monotonic() - started

    def abandon_overdue(self, futures: list[Future[Any]], limit_s: float, skip: set[int]) -> list[int]:
        """Abandon every call running longer than `limit_s` (0 or less: no deadline); their indices."""
        if limit_s <= 0:
            return []
        late = [i for i, f in enumerate(futures) if i not in skip and not f.done()
                and (self.running_for(f) or 0.0) > limit_s]
        for i in late:
            self.abandon(futures[i])
        return late

    def abandon(self, fut: Future[Any]) -> None:
        """Stop waiting for a running call: its place goes to the other calls, it finishes (or hangs) alone."""
        with self.lock:
            if fut not in self.started:
                return
            self.given_up.add(fut)
            self.abandoned += 1
            self.away += 1
            held = fut in self.holding
            self.holding.discard(fut)
            self._grow()  # its thread stays with it
        if held:
            self.slots.release()

    def hung(self) -> str | None:
        """Why the worker should be restarted (too many abandoned calls still hold threads), else None."""
        with self.lock:
            n = len(self.given_up)
        return f"{n} engine calls hung past their deadline hold threads; restart to free them" \
            if n >= HUNG_CALLS_UNHEALTHY else None

    def shutdown(self) -> None:
        """Cancel what has not started and let idle threads end (running or hung calls are left behind)."""
        pending: list[Future[Any]] = []
        while True:
            try:
                item = self.tasks.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                pending.append(item[0])
        for fut in pending:
            fut.cancel()
        with self.lock:
            live = self.live
        for _ in range(live):
            self.tasks.put(None)


class CrashJournal:
    """Files a slow stage started and never finished, because the process died (one small file each in
    ARTIFACT_ROOT/.inflight/<stage>/, shared by the stage's instances like the artifacts)."""

    def __init__(self, root: Path, stage: str) -> None:
        self.dir = Path(root) / ".inflight" / stage

    def _path(self, file_id: str, generation: int) -> Path:
        return self.dir / f"{file_id}-g{generation}"

    def begin(self, file_id: str, generation: int) -> int:
        """Note a start; return how many earlier starts of this file never ended (its worker died)."""
        path = self._path(file_id, generation)
        try:
            died = int(path.read_text() or 0)
        except (OSError, ValueError):
            died = 0
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(str(died + 1))
            tmp.replace(path)
        except OSError as exc:
            log.warning("crash journal %s not writable (%s): deaths on this file are not counted", self.dir, exc)
        return died

    def end(self, file_id: str, generation: int) -> None:
        self._path(file_id, generation).unlink(missing_ok=True)
