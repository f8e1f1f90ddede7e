"""Safe webhooks. The address filter is tested on resolved addresses WITHOUT sending anything (a fake
resolver, and a transport that records instead of connecting); the only real deliveries go to a receiver on
127.0.0.1, allow-listed by WEBHOOK_ALLOWED_NETWORKS. That receiver, down for 30 s across a tracker restart,
still gets the notification once, signed."""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from cofi.devtools.pipeline import wait_for
from cofi.pipeline.stages import STAGES
from cofi.settings import Settings
from services.tracker.webhook_policy import (
    DELIVERY_HEADER,
    AddressPolicy,
    WebhookRefused,
    delivery_id,
    reason_refused,
    redact,
    verify,
)
from services.tracker.webhooks import WebhookSender, next_delay_s
from tests.support.harness import ThreadedWorkers
from tests.support.servers import free_port
from tests.support.tracker import RunningTracker, batch_start, submit, wait_status

SECRET = "test-webhook-secret"


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("fd12:3456::1", "private"),
    ("169.254.169.254", "a cloud metadata address"), ("fd00:ec2::254", "a cloud metadata address"),
    ("100.100.100.200", "a cloud metadata address"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("100.64.0.1", "not a public address"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
    ("::ffff:10.0.0.1", "private"), ("2002:a00:1::", "private"), ("240.0.0.1", "reserved"),
])
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    ip = ipaddress.ip_address(address)
    assert reason_refused(ip, []) == reason
    with pytest.raises(WebhookRefused, match=f"resolves to {ip}, {reason}"):
        AddressPolicy().check_addresses("hooks.example.test", [ip])


def test_public_addresses_and_allow_listed_networks_pass() -> None:
    for public in ("93.184.216.34", "2606:4700::1111"):
        assert reason_refused(ipaddress.ip_address(public), []) is None
    local = AddressPolicy(["127.0.0.0/8"])
    assert local.check_addresses("localhost", [ipaddress.ip_address("127.0.0.1")]) == ipaddress.ip_address("127.0.0.1")
    with pytest.raises(WebhookRefused, match="private"):  # the allow-list is exact: 10/8 is still refused
        local.check_addresses("x", [ipaddress.ip_address("10.0.0.1")])


def test_resolution_is_checked_and_the_request_pinned_to_the_checked_address() -> None:
    answers = {"rebind.example.test": ["93.184.216.34", "10.0.0.9"], "ok.example.test": ["93.184.216.34"],
               "meta.example.test": ["169.254.169.254"]}
    policy = AddressPolicy(resolver=lambda host, _port: [ipaddress.ip_address(a) for a in answers[host]])
    with pytest.raises(WebhookRefused, match="10.0.0.9, private"):
        policy.target("https://rebind.example.test/hook")
    with pytest.raises(WebhookRefused, match="cloud metadata"):
        policy.target("http://meta.example.test/latest/meta-data/")
    with pytest.raises(WebhookRefused, match="not an http"):
        policy.target("file:///etc/passwd")
    t = policy.target("https://ok.example.test:8443/hook?token=t")
    assert (t.url, t.host_header, t.sni_hostname) == ("https://93.184.216.34:8443/hook?token=t",
                                                      "ok.example.test:8443", "ok.example.test")


def test_redacted_urls_hide_credentials_and_queries() -> None:
    assert redact("https://user:pa55@hooks.example.test:8443/cb?token=s3cret#frag") == "https://hooks.example.test:8443/cb?…"
    assert redact("http://[::1]/x") == "http://[::1]/x"


def test_backoff_doubles_and_is_capped() -> None:
    delays = [next_delay_s(n, 5, 3600) for n in range(1, 14)]
    assert 5 <= delays[0] <= 5.5 and 10 <= delays[1] <= 11 and 3600 <= delays[-1] <= 3960
    assert all(a <= b * 1.1 for a, b in zip(delays, delays[1:], strict=False))


def _outbox(db: Engine, url: str, batch_id: int = 1) -> None:
    with db.begin() as c:
        c.execute(text("INSERT INTO webhookOutbox (batchId, kind, url, payload) VALUES (:b, 'batch_complete:r0', :u, "
                       ":p)"), {"b": batch_id, "u": url, "p": json.dumps({"batchId": batch_id})})


def _row(db: Engine, batch_id: int) -> dict[str, Any]:
    with db.connect() as c:
        return dict(c.execute(text("SELECT * FROM webhookOutbox WHERE batchId = :b"), {"b": batch_id}).mappings().one())


def test_a_refused_address_is_never_connected_to_and_the_token_never_logged(
        settings: Settings, db_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    requests: list[httpx.Request] = []
    recorder = httpx.MockTransport(lambda req: requests.append(req) or httpx.Response(204))  # type: ignore[func-returns-value]
    resolver = {"hooks.internal.test": "10.20.30.40", "metadata.google.internal": "169.254.169.254",
                "localhost": "127.0.0.1"}
    policy = AddressPolicy(resolver=lambda host, _p: [ipaddress.ip_address(resolver[host])])
    sender = WebhookSender(db_engine, settings, policy=policy, transport=recorder)
    for i, url in enumerate(["https://hooks.internal.test/cb?token=TOPSECRET", "http://metadata.google.internal/x",
                             "http://localhost:8080/cb", "http://user:TOPSECRET@10.0.0.1/"], start=1):
        _outbox(db_engine, url, i)
    with caplog.at_level(logging.INFO), sender.client() as client:
        assert sender.deliver(client) == 0
    assert requests == []
    reasons = [_row(db_engine, i) for i in range(1, 5)]
    assert [r["status"] for r in reasons] == ["failed"] * 4
    assert "10.20.30.40, private" in reasons[0]["lastError"] and "cloud metadata" in reasons[1]["lastError"]
    assert "loopback" in reasons[2]["lastError"] and "10.0.0.1, private" in reasons[3]["lastError"]
    assert "TOPSECRET" not in caplog.text and all("TOPSECRET" not in r["lastError"] for r in reasons)


class Receiver:
    """The test's webhook receiver on 127.0.0.1: verifies the signature of what it gets."""

    def __init__(self, port: int) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"body": json.loads(body), "headers": dict(self.headers),
                                  "valid": verify(SECRET, dict(self.headers), body, int(time.time())),
                                  "forged": verify("other-secret", dict(self.headers), body, int(time.time())),
                                  "path": self.path})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Hook)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_receiver_down_for_30s_across_a_tracker_restart_gets_one_signed_notification(
        settings: Settings, db_engine: Engine) -> None:
    s = Settings(**{**settings.model_dump(), "webhook_secret": SECRET, "webhook_allowed_networks": ["127.0.0.0/8"],
                    "webhook_backoff_s": 1.0, "webhook_backoff_max_s": 4.0, "webhook_poll_s": 0.2})
    port = free_port()  # nothing listens there for the first 30 s
    url = f"http://127.0.0.1:{port}/done?token=abc"
    with ThreadedWorkers(s, list(STAGES)):
        with RunningTracker(s):
            submit(s, batch_start(9501, 5, callback=url))
            wait_status(db_engine, 9501, ("Completed",))
            down_since = time.monotonic()
            wait_for(lambda: _row(db_engine, 9501)["attempts"] >= 3, 60, "three failed attempts")
        first = _row(db_engine, 9501)
        assert first["status"] == "pending" and "ConnectError" in first["lastError"]
        assert first["nextAttemptAt"] is not None
        with RunningTracker(s):  # a restarted tracker picks the schedule up from the table
            time.sleep(max(0.0, 30 - (time.monotonic() - down_since)))
            receiver = Receiver(port)
            try:
                wait_for(lambda: _row(db_engine, 9501)["status"] == "sent", 60, "the delivery",
                         lambda: str(_row(db_engine, 9501)))
                time.sleep(2)  # a duplicate would arrive now
            finally:
                receiver.stop()
    row = _row(db_engine, 9501)
    assert row["attempts"] > first["attempts"] and row["sentAt"] is not None
    [got] = receiver.received
    assert got["valid"] and not got["forged"] and got["path"] == "/done?token=abc"
    assert got["headers"][DELIVERY_HEADER] == delivery_id(9501, "batch_complete:r0")
    assert got["body"] == {"batchId": 9501, "status": "Completed", "completedFiles": 5, "failedFiles": 0,
                           "totalFiles": 5, "verdicts": {"critical_fail": 0, "fail": 0, "review": 0, "pass": 5}}
