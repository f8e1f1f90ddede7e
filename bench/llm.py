"""LLM-stage benchmark: answer accuracy on labelled generated transcripts, tokens/s and latency per file.

Transcripts are composed from snippets, so every label is known: each call has or lacks a
greeting, identity check, recording disclosure, read-back, risk warning and polite tone, and
carries one trade that the call confirms, contradicts or never mentions.

    .venv/bin/python bench/llm.py --start-local               # local Gemma 3 270M (llama.cpp)
    LLM_BASE_URL=http://host:8000/v1 LLM_MODEL=... .venv/bin/python bench/llm.py   # any endpoint
Options: --files N, --mode per_question|batch|both, --json out.json. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cofi.audit.questionnaire import default_questionnaire  # noqa: E402
from cofi.pipeline.engine import StageContext  # noqa: E402
from cofi.settings import Settings  # noqa: E402
from services.llm1.engine import Llm1Engine  # noqa: E402

SYMBOLS = [("AAPL", 187.5), ("MSFT", 402.25), ("TSLA", 251.0), ("NVDA", 880.1), ("AMZN", 178.75)]
QTY_WORDS = {50: "fifty", 100: "one hundred", 200: "two hundred", 250: "two hundred and fifty", 500: "five hundred"}
FEATURES = ("greeting", "identity_verified", "recording_disclosed", "trade_read_back", "risk_disclosed",
            "professional_tone")


def make_call(i: int, rng: random.Random) -> dict[str, Any]:
    """One labelled call: transcript, answers of the default questionnaire's llm questions, one trade."""
    has = {f: rng.random() < 0.6 for f in FEATURES}
    symbol, price = rng.choice(SYMBOLS)
    qty = rng.choice(list(QTY_WORDS))
    side = rng.choice(["buy", "sell"])
    trade_case = ["confirmed", "contradicted", "not_mentioned"][i % 3]
    if trade_case == "not_mentioned":
        has["trade_read_back"] = False
    lines: list[str] = []
    lines.append("agent: Good morning, you are speaking with Sarah at Acme Brokerage, how can I help?"
                 if has["greeting"] else "agent: Yes?")
    if has["recording_disclosed"]:
        lines.append("agent: Before we continue, please note this call is being recorded.")
    if has["identity_verified"]:
        lines += ["agent: For security, can you confirm your client code and date of birth?",
                  "customer: Client code C four five six, born third of March 1970.", "agent: Thank you, verified."]
    if trade_case == "not_mentioned":
        lines += ["customer: I only wanted to check my account balance.", "agent: Your balance is twelve thousand."]
    else:
        said_qty = qty if trade_case == "confirmed" else qty * 2
        said_side = side
        lines.append(f"customer: I want to {said_side} {QTY_WORDS.get(said_qty, str(said_qty))} shares of {symbol} "
                     f"at {price:.2f} dollars.")
        if has["trade_read_back"]:
            lines += [f"agent: Let me read that back: {said_side} {said_qty} {symbol} at {price:.2f}. Do you confirm?",
                      "customer: Yes, I confirm."]
        else:
            lines.append("agent: Fine, done.")
    if has["risk_disclosed"]:
        lines.append("agent: Please remember that share prices can go down as well as up and you may lose money.")
    if has["professional_tone"]:
        lines.append("agent: Thank you for calling, have a lovely day.")
    else:
        lines.append("agent: Whatever, I haven't got all day, just hurry up next time.")
    labels = {f: ("yes" if has[f] else "no") for f in FEATURES}
    trade = {"tradeId": f"T{i}", "clientCode": "C456", "symbol": symbol, "side": side, "quantity": float(qty),
             "price": price, "tradeTime": "2026-01-15T10:05:00Z", "phone": None}
    return {"text": "\n".join(lines), "labels": labels, "trade": trade, "trade_status": trade_case}


def event_for(call: dict[str, Any], i: int) -> dict[str, Any]:
    speech = {"durationSec": 90.0, "talkTimeAgentSec": 50.0, "talkTimeCustomerSec": 30.0, "talkRatio": 0.62,
              "silenceRatio": 0.12, "longestSilenceSec": 3.0, "overtalkSec": 0.5, "speechRateWpm": 150.0}
    return {"eventId": f"e{i}", "batchId": 1, "fileId": f"f{i}", "file": f"call{i}.wav", "metadata": {},
            "results": {"stt": {"text": call["text"], "speech": speech}}, "trades": [call["trade"]],
            "questionnaire": None, "rules": None}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local() -> tuple[subprocess.Popen[bytes], str]:
    base = f"http://127.0.0.1:{_free_port()}/v1"
    proc = subprocess.Popen([sys.executable, "-m", "services.llm1.server"], cwd=REPO,
                            env={**os.environ, "LLM_BASE_URL": base}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("local llm server did not become ready")


def run_mode(settings: Settings, calls: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    engine = Llm1Engine(settings, question_mode=mode)
    ctx = StageContext(stage="llm1", worker="bench", settings=settings, batch_id=1, file_id="bench")
    q = default_questionnaire()
    llm_ids = [x.id for x in q.by_type("llm")]
    per_q = {qid: [0, 0] for qid in llm_ids}
    trade_ok = 0
    latencies, ptoks, ctoks, always_yes = [], [], [], 0
    for i, call in enumerate(calls):
        t0 = time.perf_counter()
        out = engine.process(event_for(call, i), ctx).result
        latencies.append(time.perf_counter() - t0)
        ptoks.append(out["promptTokens"])
        ctoks.append(out["completionTokens"])
        got = {a["questionId"]: a["answer"] for a in out["answers"]}
        for qid in llm_ids:
            per_q[qid][0] += got[qid] == call["labels"][qid]
            per_q[qid][1] += 1
            always_yes += call["labels"][qid] == "yes"
        trade_ok += out["tradeChecks"][0]["status"] == call["trade_status"]
        print(f"  [{mode}] file {i}: {latencies[-1]:.1f}s, answers "
              f"{sum(got[x] == call['labels'][x] for x in llm_ids)}/{len(llm_ids)}, trade "
              f"{out['tradeChecks'][0]['status']} (truth {call['trade_status']})", flush=True)
    engine.close()
    n_ans = sum(v[1] for v in per_q.values())
    return {
        "mode": mode, "files": len(calls),
        "answer_accuracy": round(sum(v[0] for v in per_q.values()) / n_ans, 3),
        "always_yes_baseline": round(always_yes / n_ans, 3),
        "per_question_accuracy": {k: round(v[0] / v[1], 3) for k, v in per_q.items()},
        "trade_check_accuracy": round(trade_ok / len(calls), 3),
        "latency_s_per_file": {"mean": round(statistics.mean(latencies), 2),
                               "median": round(statistics.median(latencies), 2), "max": round(max(latencies), 2)},
        "prompt_tokens_per_file": round(statistics.mean(ptoks), 1),
        "completion_tokens_per_file": round(statistics.mean(ctoks), 1),
        "tokens_per_s": {"prompt+completion": round((sum(ptoks) + sum(ctoks)) / sum(latencies), 1),
                         "completion": round(sum(ctoks) / sum(latencies), 2)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=12)
    ap.add_argument("--mode", choices=["per_question", "batch", "both"], default="both")
    ap.add_argument("--start-local", action="store_true", help="start python -m services.llm1.server on a free port")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    calls = [make_call(i, rng) for i in range(args.files)]
    proc = None
    settings = Settings()
    if args.start_local:
        proc, base = start_local()
        settings = settings.model_copy(update={"llm_base_url": base})
    try:
        print(f"endpoint {settings.llm_base_url} model {settings.llm_model}, {args.files} labelled files, "
              f"cpu count {os.cpu_count()}", flush=True)
        modes = ["per_question", "batch"] if args.mode == "both" else [args.mode]
        results = [run_mode(settings, calls, m) for m in modes]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
