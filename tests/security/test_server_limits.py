"""The local HTTP servers distrust their clients: they listen on 127.0.0.1 unless told otherwise, refuse a
missing, negative or oversized Content-Length before reading a byte, drop silent clients and bound how many
requests run at once. Raw sockets on 127.0.0.1 only."""

from __future__ import annotations

import io
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cofi.devtools.pipeline import REPO, wait_for
from tests.support.servers import free_port


def exchange(port: int, head: str, body: bytes = b"", timeout: float = 30) -> str:
    """Send a raw request; the status line and headers of the answer ("" when the server just closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode("latin-1")


def status(answer: str) -> int:
    return int(answer.split(" ", 2)[1]) if answer.startswith("HTTP/") else 0


def wav(seconds: float = 0.5) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(16000 * seconds), dtype=np.float32), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(scope="module")
def denoise_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    port = free_port()
    log = tmp_path_factory.mktemp("denoise") / "server.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SERVER_MAX_BODY_MB": "1", "SERVER_TIMEOUT_S": "2",
           "SERVER_THREADS": "2", "DENOISE_PORT": str(port)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "services.denoise.server"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _listening(port) and status(exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                                              "Connection: close\r\n")) == 200,
                 60, "the denoise server", log.read_text)
        yield port, log
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _hold(port: int) -> socket.socket:
    """A connection that takes one of the server's threads and says nothing (retried while the thread of an
    earlier client is still being released and the server answers 503)."""
    def attempt() -> socket.socket | None:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        if select.select([s], [], [], 0.5)[0]:  # answered at once: busy
            s.close()
            return None
        return s

    return wait_for(attempt, 10, "a free server thread")


def _post(length: str | None, extra: str = "") -> str:
    cl = f"Content-Length: {length}\r\n" if length is not None else ""
    return f"POST /denoise HTTP/1.1\r\nHost: x\r\n{cl}{extra}"


def test_denoise_server_listens_on_loopback_by_default(denoise_server: tuple[int, Path]) -> None:
    port, log = denoise_server
    assert f"listening on 127.0.0.1:{port}" in log.read_text()


@pytest.mark.parametrize(("length", "extra", "code", "why"), [
    ("-1", "", 400, "invalid Content-Length '-1'"),
    ("1e9", "", 400, "invalid Content-Length"),
    (str((1 << 20) + 1), "", 413, "exceeds 1048576"),
    ("99999999999999999999", "", 413, "exceeds"),
    (None, "", 411, "Content-Length required"),
    (None, "Transfer-Encoding: chunked\r\n", 411, "chunked bodies are not accepted"),
])
def test_denoise_server_refuses_bad_lengths_before_reading(denoise_server: tuple[int, Path], length: str | None,
                                                            extra: str, code: int, why: str) -> None:
    port, _ = denoise_server
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall((_post(length, extra) + "\r\n").encode())  # headers only: no body follows
        answer = b""
        while chunk := s.recv(65536):  # the server answers and hangs up: the unread body is no next request
            answer += chunk
    answer = answer.decode("latin-1")
    assert status(answer) == code and why in answer


def test_denoise_server_still_serves_good_requests(denoise_server: tuple[int, Path]) -> None:
    port, _ = denoise_server
    body = wav()
    answer = exchange(port, _post(str(len(body)), "Connection: close\r\n"), body)
    assert status(answer) == 200 and "X-Noise-Reduction-Db" in answer


def test_denoise_server_drops_silent_clients_and_bounds_its_threads(denoise_server: tuple[int, Path]) -> None:
    port, _ = denoise_server
    idle = [_hold(port), _hold(port)]  # both threads taken by clients that say nothing
    try:
        wait_for(lambda: status(exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n")) == 503, 10,
                 "a third request refused while two are held")
        for s in idle:  # SERVER_TIMEOUT_S=2: the server hangs up on a client that says nothing
            assert s.recv(1024) == b""
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: status(exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")) == 200, 10,
             "served again once the silent clients are gone")


def test_llm_server_refuses_bad_lengths(llm_server: str) -> None:
    port = int(llm_server.rsplit(":", 1)[1].split("/")[0])
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    for length, code in (("-1", 400), ("2000000000", 413), (None, 411)):
        cl = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
        answer = exchange(port, head + cl + "Connection: close\r\n")
        assert status(answer) == code, answer
    assert status(exchange(port, "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")) == 200
