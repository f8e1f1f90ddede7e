"""FileEvent builders for the LLM-stage tests."""

from __future__ import annotations

from typing import Any

SPEECH = {"durationSec": 120.0, "talkTimeAgentSec": 60.0, "talkTimeCustomerSec": 40.0, "talkRatio": 0.6,
          "silenceRatio": 0.15, "longestSilenceSec": 4.0, "overtalkSec": 1.0, "speechRateWpm": 150.0}


def make_event(text: str = "", *, trades: list[dict[str, Any]] | None = None, questionnaire: str | None = None,
               rules: str | None = None, llm1: dict[str, Any] | None = None,
               speech: dict[str, float] | None = None, stt: bool = True, language: str = "en") -> dict[str, Any]:
    """A minimal valid FileEvent at the llm1/llm2 stage."""
    return {
        "eventId": "e1", "batchId": 7, "fileId": "f1", "file": "call1.wav", "audioPath": "/data/call1.wav",
        "currentAudio": "/data/call1.wav", "stages": ["lid", "stt", "llm1", "llm2"], "generation": 0,
        "metadata": {"clientCode": "C1"}, "emittedAt": 1_700_000_000_000,
        "results": {"denoise": None, "ivr": None, "lid": None,
                    "stt": {"worker": "w", "engine": "whisper", "durationMs": 1, "language": language,
                            "transcriptPath": "/tmp/t.json", "text": text, "words": len(text.split()),
                            "speech": dict(speech or SPEECH)} if stt else None,
                    "llm1": llm1, "llm2": None},
        "trades": trades or [], "questionnaire": questionnaire, "rules": rules,
    }


def with_result(event: dict[str, Any], stage: str, result: dict[str, Any]) -> dict[str, Any]:
    """The event with the stage's result record filled as the worker would (worker/engine/durationMs added)."""
    ev = {**event, "results": dict(event["results"])}
    ev["results"][stage] = {"worker": "test", "engine": "test", "durationMs": 1, **result}
    return ev
