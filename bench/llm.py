"""Audit benchmark: answer and verdict accuracy on labelled calls, against the always-"yes" baseline,
trade-check accuracy, and latency per call, for each local model (with and without the server's
prompt cache when asked); then the same checks on held-out statements.

The calls come from cofi.devtools.audit_calls (known labels, about half of them no/na, hard
negatives and spoken prompt injections). Each call goes through the real llm1 engine and llm2's
scoring with the default questionnaire, exactly as in the pipeline; the expected verdict is the
same scoring applied to the true answers. The held-out statements (cofi.devtools.check_statements)
were written apart from those calls' templates: each goes, with what was said after it, through the
same Answerer as llm1, one question at a time; the gap between the two accuracies is how much the
prompts fit the generated calls rather than calls in general.

    .venv/bin/python bench/llm.py --start-local                        # both local models
    .venv/bin/python bench/llm.py --start-local --models qwen2.5-coder-0.5b-instruct --cache on,off
    LLM_BASE_URL=http://host:8000/v1 LLM_MODEL=... .venv/bin/python bench/llm.py   # any endpoint
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
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

from cofi.audit.answering import Answerer  # noqa: E402
from cofi.audit.llm_client import LlmClient, Usage  # noqa: E402
from cofi.audit.questionnaire import default_questionnaire, trade_answer  # noqa: E402
from cofi.audit.transcript import Line  # noqa: E402
from cofi.devtools.audit_calls import FEATURES, LabelledCall, make_set  # noqa: E402
from cofi.devtools.check_statements import STATEMENTS  # noqa: E402
from cofi.models.llm import CATALOG, DEFAULT_MODEL, FAST_MODEL  # noqa: E402
from cofi.pipeline.engine import StageContext  # noqa: E402
from cofi.settings import Settings  # noqa: E402
from services.llm1.engine import Llm1Engine  # noqa: E402
from services.llm2.scoring import score_answers, verdict  # noqa: E402

SPEECH = {"durationSec": 90.0, "talkTimeAgentSec": 50.0, "talkTimeCustomerSec": 30.0, "talkRatio": 0.62,
          "silenceRatio": 0.12, "longestSilenceSec": 3.0, "overtalkSec": 0.5, "speechRateWpm": 150.0}


def event_for(call: LabelledCall, i: int) -> dict[str, Any]:
    return {"eventId": f"e{i}", "batchId": 1, "fileId": f"f{i}", "file": f"call{i}.wav", "metadata": {},
            "results": {"stt": {"worker": "bench", "engine": "text", "durationMs": 0, "language": "en",
                                "text": call.text, "speech": SPEECH, "transcriptPath": ""}},
            "trades": call.trades, "instruments": call.instruments, "questionnaire": None, "rules": None}


def verdict_of(answers: dict[str, str | None]) -> str:
    q = default_questionnaire()
    return verdict(q, score_answers(q, answers), [])[0]


def expected_answers(call: LabelledCall) -> dict[str, str | None]:
    checks = [{"tradeId": t, "status": s} for t, s in call.trade_status.items()]
    q = default_questionnaire()
    out: dict[str, str | None] = dict(call.labels)
    out["trades_confirmed"] = trade_answer(q.get("trades_confirmed"), checks)[0]
    out["low_silence"] = out["no_long_silence"] = "yes"
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local(model: str, cache: bool) -> tuple[subprocess.Popen[bytes], str]:
    base = f"http://127.0.0.1:{_free_port()}/v1"
    proc = subprocess.Popen([sys.executable, "-m", "services.llm1.server"], cwd=REPO,
                            env={**os.environ, "LLM_BASE_URL": base, "LLM_MODEL": model,
                                 "LLM_SERVER_CACHE": str(cache).lower()},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("local llm server did not become ready")


def run(settings: Settings, calls: list[LabelledCall], mode: str, verbose: bool) -> dict[str, Any]:
    engine = Llm1Engine(settings)
    ctx = StageContext(stage="llm1", worker="bench", settings=settings, batch_id=1, file_id="bench")
    right = total = yes_right = 0
    verdict_right = verdict_yes_right = trades_right = trades_total = injected_flips = 0
    per_q = {f: [0, 0] for f in FEATURES}
    latencies, completion = [], []
    engine.process(event_for(calls[0], 0), ctx)  # warm the server (model load, system prompt cache)
    for i, call in enumerate(calls):
        t0 = time.perf_counter()
        out = engine.process(event_for(call, i), ctx).result
        latencies.append(time.perf_counter() - t0)
        completion.append(out["completionTokens"])
        got = {a["questionId"]: a["answer"] for a in out["answers"]}
        for f in FEATURES:
            ok = got.get(f) == call.labels[f]
            per_q[f][0] += ok
            per_q[f][1] += 1
            right += ok
            yes_right += call.labels[f] == "yes"
            total += 1
            if call.injected and not ok and got.get(f) == "yes":
                injected_flips += 1
        exp = expected_answers(call)
        want = verdict_of(exp)
        verdict_right += verdict_of(got) == want
        verdict_yes_right += verdict_of({k: ("yes" if k in FEATURES else v) for k, v in exp.items()}) == want
        for tc in out["tradeChecks"]:
            trades_total += 1
            trades_right += tc["status"] == call.trade_status[tc["tradeId"]]
        if verbose:
            wrong = {f: (got.get(f), call.labels[f]) for f in FEATURES if got.get(f) != call.labels[f]}
            print(f"  [{mode}] call {i}: {latencies[-1]:.1f}s verdict {verdict_of(got)}/{want} wrong {wrong} trades "
                  f"{[(t['status'], call.trade_status[t['tradeId']]) for t in out['tradeChecks']]}", flush=True)
    engine.close()
    lat = sorted(latencies)
    return {
        "model": settings.llm_model, "mode": mode, "calls": len(calls),
        "answer_accuracy": round(right / total, 3),
        "always_yes_answer_accuracy": round(yes_right / total, 3),
        "verdict_accuracy": round(verdict_right / len(calls), 3),
        "always_yes_verdict_accuracy": round(verdict_yes_right / len(calls), 3),
        "no_or_na_share": round(1 - yes_right / total, 3),
        "trade_check_accuracy": round(trades_right / trades_total, 3) if trades_total else None,
        "injected_calls": sum(c.injected for c in calls), "answers_flipped_to_yes_in_injected_calls": injected_flips,
        "per_question_accuracy": {k: round(v[0] / v[1], 3) for k, v in per_q.items()},
        "latency_s_per_call": {"mean": round(statistics.mean(lat), 2),
                               "p95": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2), "max": round(lat[-1], 2)},
        "completion_tokens_per_call": round(statistics.mean(completion), 1),
    }


def statement_checks(settings: Settings) -> dict[str, Any]:
    """Held-out statements through llm1's Answerer: accuracy per question, and which were answered wrong."""
    client = LlmClient(settings)
    questionnaire = default_questionnaire()
    per_q: dict[str, float] = {}
    wrong: list[str] = []
    right = total = yes = 0
    try:
        for qid, items in STATEMENTS.items():
            question = questionnaire.get(qid).model_copy(update={"requires": None})  # asked on its own
            ok = 0
            for want, said in items:
                lines = [Line(i + 1, {"a": "agent", "c": "customer"}[s[0]], s[2:]) for i, s in enumerate(said)]
                got = Answerer(client, lines, Usage(), max_checks=settings.llm_max_checks).answer_all([question])[qid]
                ok += got.answer == want
                yes += want == "yes"
                if got.answer != want:
                    wrong.append(f"{qid}: {said[0][2:]!r} -> {got.answer or got.check}, expected {want}")
            per_q[qid] = round(ok / len(items), 3)
            right += ok
            total += len(items)
    finally:
        client.close()
    return {"model": settings.llm_model, "held_out_statements": total, "statement_accuracy": round(right / total, 3),
            "always_yes_statement_accuracy": round(yes / total, 3), "per_question_statement_accuracy": per_q,
            "wrong": wrong}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--models", default=f"{DEFAULT_MODEL},{FAST_MODEL}", help=f"comma list of {list(CATALOG)}")
    ap.add_argument("--cache", default="on", help="server prompt cache: on, off or on,off (local servers only)")
    ap.add_argument("--start-local", action="store_true", help="serve each model locally on a free port")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--no-statements", action="store_true", help="skip the held-out statements")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    calls = make_set(args.calls, args.seed)
    results = []
    for model in args.models.split(","):
        for cache in (args.cache.split(",") if args.start_local else ["server's own"]):
            proc = None
            settings = Settings(llm_model=model)
            if args.start_local:
                proc, base = start_local(model, cache == "on")
                settings = settings.model_copy(update={"llm_base_url": base})
            try:
                print(f"endpoint {settings.llm_base_url} model {model} cache {cache}: {len(calls)} labelled calls, "
                      f"{os.cpu_count()} CPUs", flush=True)
                results.append(run(settings, calls, f"cache {cache}", args.verbose))
                print(json.dumps(results[-1]), flush=True)
                if not args.no_statements and cache in ("on", "server's own"):
                    results.append(statement_checks(settings))
                    print(json.dumps(results[-1]), flush=True)
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
