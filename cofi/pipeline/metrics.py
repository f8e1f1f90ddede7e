"""Prometheus metrics and /healthz for every service, on METRICS_PORT."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)


class StageMetrics:
    """The stage worker's metrics, in a registry of its own (tests run several workers per process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.files = Counter("cofi_stage_files", "Files handled by a stage, by outcome",
                             ["stage", "engine", "outcome"], registry=self.registry)
        self.seconds = Histogram("cofi_stage_processing_seconds", "Engine time per file", ["stage", "engine"],
                                 buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
                                 registry=self.registry)
        self.inflight = Gauge("cofi_stage_inflight", "Files being processed now", ["stage"], registry=self.registry)
        self.held = Gauge("cofi_stage_held", "1 while the stage takes no new files: a stage it hands files to has "
                          "STAGE_MAX_AHEAD waiting (backpressure)", ["stage"], registry=self.registry)
        self.retries = Counter("cofi_stage_retries", "Transient errors retried", ["stage"], registry=self.registry)
        self.transactions = Counter("cofi_stage_transactions", "Kafka transactions by result",
                                    ["stage", "result"], registry=self.registry)
        self.lag = Gauge("cofi_consumer_lag", "Consumer lag per partition (librdkafka statistics)",
                         ["stage", "topic", "partition"], registry=self.registry)

    def on_stats(self, stage: str, stats_json: str) -> None:
        """librdkafka `stats_cb`: publish consumer lag per assigned partition."""
        try:
            stats = json.loads(stats_json)
        except ValueError:
            return
        for topic, t in stats.get("topics", {}).items():
            for pid, p in t.get("partitions", {}).items():
                if pid == "-1":
                    continue
                # Offsets are committed by the transactional producer, so librdkafka's own
                # consumer_lag stays -1: measure from the last stable offset to our position.
                end, pos = p.get("ls_offset", -1), p.get("app_offset", -1)
                lag = end - pos if end >= 0 and pos >= 0 else p.get("consumer_lag", -1)
                if lag >= 0:
                    self.lag.labels(stage, topic, pid).set(lag)


class HealthServer:
    """Serves /metrics (Prometheus text) and /healthz (200 while `healthy()` is true)."""

    def __init__(self, port: int, registry: CollectorRegistry, healthy: Callable[[], tuple[bool, dict]]) -> None:
        self.registry = registry
        self.healthy = healthy
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("0.0.0.0", port), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if self.path.startswith("/metrics"):
                    body, ctype, code = generate_latest(outer.registry), CONTENT_TYPE_LATEST, 200
                elif self.path.startswith("/healthz"):
                    ok, detail = outer.healthy()
                    body, ctype, code = json.dumps({"ok": ok, **detail}).encode(), "application/json", 200 if ok else 503
                else:
                    body, ctype, code = b"not found\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def start(self) -> HealthServer:
        self.thread.start()
        log.info("metrics and health on :%d (/metrics, /healthz)", self.port)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Heartbeat:
    """Marks the main loop alive; /healthz fails when it stalls."""

    def __init__(self, stale_after_s: float = 60.0) -> None:
        self.last = time.monotonic()
        self.stale_after_s = stale_after_s

    def beat(self) -> None:
        self.last = time.monotonic()

    def fresh(self) -> bool:
        return time.monotonic() - self.last < self.stale_after_s


class CachedHealth:
    """Calls a (possibly slow) health probe on a background thread at most every `every_s` seconds;
    /healthz reads the last answer, so neither the poll loop nor a health request ever waits on it."""

    def __init__(self, probe: Callable[[], tuple[bool, str]], every_s: float = 5.0) -> None:
        self.probe = probe
        self.every_s = every_s
        self.last: tuple[bool, str] = (True, "")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-health", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ok, reason = self.probe()
                self.last = (bool(ok), str(reason))
            except Exception as exc:  # noqa: BLE001 - a failing probe is an unhealthy engine, not a crash
                self.last = (False, f"health probe raised {type(exc).__name__}: {exc}")
            self._stop.wait(self.every_s)

    def start(self) -> CachedHealth:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
