"""The llm1 stage against the bare LLM server, in one run: what the engine adds to the model's own time.

llm1 is measured as a black box: `Llm1Engine.process` once per file (bench/llm.py's labelled calls)
against the server through a recording proxy on 127.0.0.1, then the very chat completions it sent
(same bodies, same order, same count) replayed straight to the server. Rounds alternate (engine,
raw, raw, engine, ...) so other load on a shared machine falls on both alike. Prints files/s of
each and the ratio engine/raw (1.0 = the engine costs nothing beyond its completions).

    .venv/bin/python -m bench.llm_throughput --files 3 --model qwen2.5-coder-0.5b-instruct
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from bench.llm import event_for, start_local
from cofi.devtools.audit_calls import LabelledCall, make_set
from cofi.devtools.pipeline import free_port
from cofi.pipeline.engine import StageContext
from cofi.settings import Settings
from services.llm1.engine import Llm1Engine


class RecordingProxy:
    """Forwards every request to `upstream` and keeps the bodies of chat completions, in order."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.bodies: list[bytes] = []
        outer = self
        client = httpx.Client(timeout=600)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else None
                if method == "POST" and self.path.endswith("/chat/completions"):
                    outer.bodies.append(body or b"")
                resp = client.request(method, outer.upstream + self.path.removeprefix("/v1"), content=body,
                                      headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self._forward("GET")

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                self._forward("POST")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


def run_engine(settings: Settings, calls: list[LabelledCall]) -> float:
    engine = Llm1Engine(settings)
    ctx = StageContext(stage="llm1", worker="bench", settings=settings, batch_id=1, file_id="bench")
    try:
        t0 = time.monotonic()
        for i, call in enumerate(calls):
            engine.process(event_for(call, i), ctx)
        return time.monotonic() - t0
    finally:
        engine.close()


def replay(base: str, bodies: list[bytes]) -> float:
    with httpx.Client(timeout=600) as client:
        t0 = time.monotonic()
        for body in bodies:
            client.post(f"{base}/chat/completions", content=body,
                        headers={"Content-Type": "application/json"}).raise_for_status()
        return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--model", default=None, help="LLM_MODEL of the local server (default: the settings')")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    if args.model:
        os.environ["LLM_MODEL"] = args.model
    os.environ.setdefault("LLM_SERVER_THREADS", str(os.cpu_count() or 2))
    calls = make_set(args.files, args.seed)
    proc, base = start_local(Settings().llm_model, cache=True)
    proxy = RecordingProxy(base)
    try:
        settings = Settings().model_copy(update={"llm_base_url": proxy.base})
        run_engine(settings, calls)  # warm-up: the dialect probe, and every prompt in the server's cache, so that
        # the first measured kind does not pay the cache misses the second then saves (0.71 instead of ~1)
        times: dict[str, list[float]] = {"engine": [], "raw": []}
        bodies: list[bytes] = []
        for r in range(args.rounds):
            for kind in ("engine", "raw") if r % 2 == 0 else ("raw", "engine"):
                if kind == "engine":
                    proxy.bodies.clear()
                    times["engine"].append(run_engine(settings, calls))
                    bodies = list(proxy.bodies)
                else:  # round 1 runs the engine first, so there are bodies to replay
                    times["raw"].append(replay(base, bodies))
                print(f"  round {r + 1} {kind:<6} {times[kind][-1]:6.1f} s for {len(calls)} files "
                      f"({len(bodies)} chat completions)", flush=True)
        engine_rate = len(calls) * len(times["engine"]) / sum(times["engine"])
        raw_rate = len(calls) * len(times["raw"]) / sum(times["raw"])
        print(f"llm1 ({settings.llm_model}, {len(bodies) / len(calls):.1f} completions per file): engine "
              f"{engine_rate:.3f} files/s, the same completions straight to the server {raw_rate:.3f} files/s: "
              f"engine/raw = {engine_rate / raw_rate:.2f}")
    finally:
        proxy.close()
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
