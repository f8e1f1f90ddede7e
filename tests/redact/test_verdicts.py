"""The audit reaches the same verdicts on redacted transcripts: held PII calls audited by the real llm1
(the local llama.cpp server, Qwen2.5-Coder 0.5B for speed) and llm2, once with stt's transcript and
once with the redact stage's, give identical answers, trade checks and verdicts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from cofi.devtools.pii_calls import make_pii_call, whisper_like
from cofi.pipeline.engine import StageContext
from cofi.pipeline.results import SpeechParams
from cofi.pipeline.transcript_source import audit_transcript, labelled_text
from cofi.settings import Settings
from services.llm1.engine import Llm1Engine
from services.llm2.engine import Llm2Engine
from services.redact.detect import Detector
from services.redact.engines import PresidioRedactor
from tests.support.audio import make_event

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # ~12 LLM calls on CPU
HELD = (40, 41, 42)
QUESTIONNAIRE = json.dumps({"id": "redaction-check", "pass_score": 70, "questions": [
    {"id": "identity_verified", "weight": 2, "critical": True,
     "text": "Did the agent verify the customer's identity (client code, account number or date of birth)?"},
    {"id": "trade_read_back", "weight": 2,
     "text": "Did the agent read back the order details (symbol, buy or sell, quantity, price) and get the "
             "customer's confirmation?"}]})


@pytest.fixture(scope="module")
def llm(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(base URL, served model) of the session's local LLM server, started with the fast 0.5B model
    unless an earlier test of the session started it already."""
    os.environ.setdefault("LLM_MODEL", "qwen2.5-coder-0.5b-instruct")
    base = request.getfixturevalue("llm_server")
    return base, httpx.get(f"{base}/models", timeout=10).json()["data"][0]["id"]


def _result(stage: str, out: dict[str, Any]) -> dict[str, Any]:
    return {"worker": "test", "engine": stage, "durationMs": 1, **out}


def _audit(event: dict[str, Any], llm1: Llm1Engine, llm2: Llm2Engine, ctx: StageContext) -> dict[str, Any]:
    event = {**event, "results": {**event["results"], "llm1": _result("llm1", llm1.process(event, ctx).result)}}
    return llm2.process(event, ctx).result | {"llm1": event["results"]["llm1"]}


def test_held_calls_get_identical_verdicts_with_and_without_redaction(tmp_path: Path, llm: tuple[str, str],
                                                                      detector: Detector) -> None:
    settings = Settings(llm_base_url=llm[0], llm_model=llm[1], llm_max_retries=2, llm_concurrency=1,
                        llm_max_tokens=200, llm_timeout_s=300,
                        artifact_root=tmp_path / "artifacts", redact_keep_original=True)
    llm1, llm2, redactor = Llm1Engine(settings), Llm2Engine(settings), PresidioRedactor(settings, detector)
    verdicts = []
    try:
        for seed in HELD:
            call = make_pii_call(tmp_path / f"held_{seed}.wav", seed)
            ctx = StageContext("llm1", "test", settings, 7, f"h{seed}")
            stt_json = ctx.artifact_dir / "stt.json"
            doc = {**whisper_like(call, seed).doc, "source": str(tmp_path / f"held_{seed}.wav")}
            stt_json.write_text(json.dumps(doc))
            plain = make_event(tmp_path / f"held_{seed}.wav")
            plain["results"]["stt"] = _result("stt", {
                "language": "en", "transcriptPath": str(stt_json), "text": labelled_text(doc["segments"]),
                "words": 200, "speech": dict.fromkeys(SpeechParams.model_fields, 0.1)})
            plain.update(trades=[call.trade], questionnaire=QUESTIONNAIRE, redactPolicy={"entities": [], "audio": "tone"})
            redact_ctx = StageContext("redact", "test", settings, 7, f"h{seed}")
            redacted = {**plain, "results": {**plain["results"],
                                             "redact": _result("redact", redactor.process(plain, redact_ctx).result)}}
            assert "[ACCOUNT_NUMBER_1]" in audit_transcript(redacted) and audit_transcript(plain) != audit_transcript(redacted)
            before, after = _audit(plain, llm1, llm2, ctx), _audit(redacted, llm1, llm2, ctx)
            answers = [(a["questionId"], a["normalized"]) for a in before["answers"]]
            assert [(a["questionId"], a["normalized"]) for a in after["answers"]] == answers, (seed, before, after)
            assert [c["status"] for c in after["llm1"]["tradeChecks"]] == [c["status"] for c in before["llm1"]["tradeChecks"]]
            assert (after["verdict"], after["score"]) == (before["verdict"], before["score"]), (seed, before, after)
            verdicts.append((seed, before["verdict"], answers))
    finally:
        llm1.close()
        llm2.close()
    print(f"\nverdicts with and without redaction ({llm[1]}): {verdicts}")
