"""`python -m services.denoise.server`: the denoise HTTP server on DENOISE_PORT (default 5010).

POST /denoise with a WAV/FLAC body -> 200 audio/wav (cleaned, same rate and channels) with
header X-Noise-Reduction-Db; 400 for a body that is not audio or a negative Content-Length, 411 without
one, 413 when larger than SERVER_MAX_BODY_MB, 503 when SERVER_THREADS requests already run.
GET /healthz -> 200 "ok". Runs the same spectral gating as the in-process engine.
Listens on DENOISE_HOST (127.0.0.1) unless --host says otherwise; drops clients silent for SERVER_TIMEOUT_S.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler

from cofi.audio.io import read_wav_bytes, wav_bytes
from cofi.errors import PermanentError
from cofi.httpguard import BodyRefused, BoundedHTTPServer, body_length
from cofi.logs import setup_logging
from cofi.settings import Settings
from services.denoise.spectral import denoise

log = logging.getLogger("cofi.denoise.server")


class Handler(BaseHTTPRequestHandler):
    server_version = "cofi-denoise/1"
    protocol_version = "HTTP/1.1"
    server: BoundedHTTPServer

    def _reply(self, code: int, body: bytes, ctype: str = "text/plain", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/healthz":
            self._reply(200, b"ok")
        else:
            self._reply(404, b"not found")

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/denoise":
            self._reply(404, b"not found")
            return
        try:
            length = body_length(self.headers.get("Content-Length"), self.server.max_body,
                                 "chunked" in (self.headers.get("Transfer-Encoding") or "").lower())
        except BodyRefused as exc:
            self.close_connection = True  # the unread body must not be taken for the next request
            self._reply(exc.status, str(exc).encode())
            return
        body = self.rfile.read(length)
        if len(body) < length:  # the client went away (or timed out) mid-body
            self.close_connection = True
            return
        try:
            samples, sr = read_wav_bytes(body, what="request body")
        except PermanentError as exc:
            self._reply(400, str(exc).encode())
            return
        try:
            cleaned, db = denoise(samples, sr)
        except Exception as exc:  # a bug or resource problem here is the server's fault: 500, client retries
            log.exception("denoise failed")
            self._reply(500, f"denoise failed: {exc}".encode())
            return
        self._reply(200, wav_bytes(cleaned, sr), "audio/wav", {"X-Noise-Reduction-Db": f"{db:.2f}"})

    def log_message(self, fmt: str, *args: object) -> None:
        log.info("%s " + fmt, self.address_string(), *args)


def main() -> None:
    settings = Settings()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default=settings.denoise_host, help="interface (default DENOISE_HOST, 127.0.0.1)")
    ap.add_argument("--port", type=int, default=settings.denoise_port)
    args = ap.parse_args()
    setup_logging()
    httpd = BoundedHTTPServer((args.host, args.port), Handler, threads=settings.server_threads,
                              timeout_s=settings.server_timeout_s, max_body=settings.server_max_body_mb << 20)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    log.info("denoise server listening on %s:%d", args.host, args.port)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
