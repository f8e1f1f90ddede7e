"""Delivers the webhook outbox (batch completion callbacks): signed, address-filtered, retried with
exponential backoff for as long as WEBHOOK_GIVE_UP_H, durable across tracker restarts (the schedule
is `webhookOutbox.nextAttemptAt`). What may be called and how it is signed: `webhook_policy`."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any

import httpx
from sqlalchemy import Engine, text

from cofi.settings import Settings
from services.tracker.webhook_policy import (
    AddressPolicy,
    ResolveFailed,
    WebhookRefused,
    delivery_id,
    redact,
    signed_headers,
)

log = logging.getLogger(__name__)
BATCH = 50


def next_delay_s(attempts: int, base_s: float, max_s: float) -> float:
    """Delay before attempt `attempts + 1`: base * 2^(attempts-1), capped, with up to 10 % jitter."""
    delay = min(max_s, base_s * 2 ** max(0, attempts - 1))
    return delay * (1 + random.random() / 10)


class WebhookSender:
    """Background thread: POST the due outbox rows; a failed attempt is rescheduled, a refused address or a
    notification older than WEBHOOK_GIVE_UP_H is marked failed."""

    def __init__(self, db: Engine, settings: Settings, *, policy: AddressPolicy | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.db = db
        self.settings = settings
        self.policy = policy or AddressPolicy(settings.webhook_allowed_networks)
        self.transport = transport  # tests: a transport that records instead of connecting
        self.secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        if self.secret is None:
            log.warning("webhooks: WEBHOOK_SECRET is not set: callbacks are sent unsigned")
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.settings.webhook_timeout_s + 5)

    def _run(self) -> None:
        with self.client() as client:
            while not self._stop.is_set():
                try:
                    self.deliver(client)
                except Exception:  # noqa: BLE001 - a DB hiccup must not kill the sender
                    log.exception("webhooks: delivery round failed")
                self._wake.wait(self.settings.webhook_poll_s)
                self._wake.clear()

    def client(self) -> httpx.Client:
        return httpx.Client(timeout=self.settings.webhook_timeout_s, follow_redirects=False, transport=self.transport,
                            trust_env=False)  # no proxy from the environment: the checked address is the one called

    def deliver(self, client: httpx.Client) -> int:
        """One round over the due rows; returns how many were delivered."""
        with self.db.connect() as conn:
            rows = conn.execute(text(
                "SELECT id, batchId, kind, url, payload, attempts, "
                "TIMESTAMPDIFF(SECOND, createdAt, CURRENT_TIMESTAMP(3)) AS ageS FROM webhookOutbox "
                "WHERE status = 'pending' AND (nextAttemptAt IS NULL OR nextAttemptAt <= CURRENT_TIMESTAMP(3)) "
                "ORDER BY id LIMIT :n"), {"n": BATCH}).mappings().all()
        sent = 0
        for r in rows:
            if self._stop.is_set():
                break
            status, error = self._attempt(client, r)
            sent += status == "sent"
            self._record(r, status, error)
        return sent

    def _attempt(self, client: httpx.Client, r: Any) -> tuple[str, str | None]:
        """("sent" | "pending" | "failed", error)."""
        shown = redact(r["url"])
        body = (r["payload"] if isinstance(r["payload"], str) else json.dumps(r["payload"])).encode()
        try:
            target = self.policy.target(r["url"])
            headers = {**signed_headers(body, delivery_id(r["batchId"], r["kind"]), int(time.time()), self.secret),
                       "Host": target.host_header}
            ext = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
            resp = client.post(target.url, content=body, headers=headers, extensions=ext)
            if resp.status_code >= 300:
                raise _Rejected(f"HTTP {resp.status_code}")
            log.info("webhooks: batch %s %s delivered to %s", r["batchId"], r["kind"], shown)
            return "sent", None
        except WebhookRefused as exc:
            log.error("webhooks: batch %s: %s refused: %s", r["batchId"], shown, exc)
            return "failed", f"refused: {exc}"
        except (httpx.HTTPError, _Rejected, ResolveFailed) as exc:
            error = f"{type(exc).__name__}: {exc}".replace(r["url"], shown)
            if r["ageS"] > self.settings.webhook_give_up_h * 3600:
                log.error("webhooks: batch %s: %s undelivered for %gh, giving up: %s", r["batchId"], shown,
                          self.settings.webhook_give_up_h, error)
                return "failed", f"gave up after {self.settings.webhook_give_up_h:g}h: {error}"
            log.warning("webhooks: batch %s: %s failed (%s); attempt %d", r["batchId"], shown, error,
                        r["attempts"] + 1)
            return "pending", error

    def _record(self, r: Any, status: str, error: str | None) -> None:
        delay = next_delay_s(r["attempts"] + 1, self.settings.webhook_backoff_s, self.settings.webhook_backoff_max_s)
        with self.db.begin() as conn:
            conn.execute(text(
                "UPDATE webhookOutbox SET status = :s, attempts = attempts + 1, lastError = :e, "
                "sentAt = IF(:s = 'sent', CURRENT_TIMESTAMP(3), sentAt), "
                "nextAttemptAt = IF(:s = 'pending', CURRENT_TIMESTAMP(3) + INTERVAL (:ms * 1000) MICROSECOND, NULL) "
                "WHERE id = :id"), {"s": status, "e": error, "id": r["id"], "ms": int(delay * 1000)})


class _Rejected(Exception):
    """The receiver answered, but not with 2xx."""
