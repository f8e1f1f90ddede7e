"""Delivers the webhook outbox (batch completion callbacks) with bounded retries."""

from __future__ import annotations

import json
import logging
import threading

import httpx
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)


class WebhookSender:
    """Background thread: POST pending outbox rows; a row is retried up to `max_attempts` times."""

    def __init__(self, db: Engine, *, max_attempts: int = 5, interval_s: float = 5.0) -> None:
        self.db = db
        self.max_attempts = max_attempts
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while not self._stop.is_set():
                self._wake.wait(self.interval_s)
                self._wake.clear()
                try:
                    self.deliver(client)
                except Exception:  # noqa: BLE001 - a DB hiccup must not kill the sender
                    log.exception("webhooks: delivery round failed")

    def deliver(self, client: httpx.Client) -> int:
        with self.db.connect() as conn:
            rows = conn.execute(text(
                "SELECT id, url, payload, attempts FROM webhookOutbox WHERE status = 'pending' "
                "AND attempts < :m ORDER BY id LIMIT 50"), {"m": self.max_attempts}).mappings().all()
        sent = 0
        for r in rows:
            payload = r["payload"] if isinstance(r["payload"], str) else json.dumps(r["payload"])
            try:
                resp = client.post(r["url"], content=payload, headers={"Content-Type": "application/json"})
                resp.raise_for_status()
                status, error = "sent", None
                sent += 1
            except httpx.HTTPError as exc:
                status = "pending" if r["attempts"] + 1 < self.max_attempts else "failed"
                error = f"{type(exc).__name__}: {exc}"
                log.warning("webhooks: %s failed (%s)", r["url"], error)
            with self.db.begin() as conn:
                conn.execute(text(
                    "UPDATE webhookOutbox SET status = :s, attempts = attempts + 1, lastError = :e, "
                    "sentAt = IF(:s = 'sent', CURRENT_TIMESTAMP(3), sentAt) WHERE id = :id"),
                    {"s": status, "e": error, "id": r["id"]})
        return sent
