"""Denoise engines: `spectral` (in process) and `http` (POST to the denoise server)."""

from __future__ import annotations

from typing import Any

import httpx

from cofi.audio.io import load_settings_audio, read_wav_bytes, resample, wav_bytes, write_wav
from cofi.pipeline.engine import Engine, PermanentError, StageContext, StageOutput, TransientError
from cofi.settings import Settings
from services.denoise.spectral import denoise

ENGINES = ("spectral", "http")


class SpectralDenoise(Engine):
    """Stationary spectral gating per channel; stateless, so safe from any number of threads."""

    stage = "denoise"
    name = "spectral"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        audio = load_settings_audio(event["currentAudio"], self.settings)
        cleaned, reduction_db = denoise(audio.samples, audio.sample_rate)
        out = write_wav(ctx.artifact("wav"), cleaned, audio.sample_rate)
        return StageOutput(result={"outputPath": str(out), "sampleRate": audio.sample_rate,
                                   "noiseReductionDb": round(reduction_db, 2)},
                           audio_path=str(out))


class HttpDenoise(Engine):
    """Sends the decoded 16 kHz call as WAV to http://DENOISE_HOST:DENOISE_PORT/denoise.

    Refused connections, timeouts and 5xx are transient (the worker retries); 4xx means the
    server rejected this audio, which no retry fixes.
    """

    stage = "denoise"
    name = "http"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = f"http://{settings.denoise_host}:{settings.denoise_port}/denoise"
        self.client = httpx.Client(timeout=httpx.Timeout(settings.denoise_timeout_s, connect=10.0))

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        audio = load_settings_audio(event["currentAudio"], self.settings)
        try:
            resp = self.client.post(self.url, content=wav_bytes(audio.samples, audio.sample_rate),
                                    headers={"Content-Type": "audio/wav"})
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise TransientError(f"denoise server {self.url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 500:
            raise TransientError(f"denoise server {self.url}: HTTP {resp.status_code}: {resp.text[:300]}")
        if resp.status_code >= 400:
            raise PermanentError(f"denoise server {self.url} rejected {event['currentAudio']}: "
                                 f"HTTP {resp.status_code}: {resp.text[:300]}")
        cleaned, sr = read_wav_bytes(resp.content, what=f"denoise server {self.url} response")
        if sr != audio.sample_rate:
            cleaned, sr = resample(cleaned, sr, audio.sample_rate), audio.sample_rate
        out = write_wav(ctx.artifact("wav"), cleaned, sr)
        db = resp.headers.get("X-Noise-Reduction-Db")
        return StageOutput(result={"outputPath": str(out), "sampleRate": sr,
                                   "noiseReductionDb": float(db) if db else None},
                           audio_path=str(out))

    def close(self) -> None:
        self.client.close()


def build_engine(name: str, settings: Settings) -> Engine:
    if name == "spectral":
        return SpectralDenoise(settings)
    if name == "http":
        return HttpDenoise(settings)
    raise ValueError(f"unknown DENOISE_ENGINE {name!r}; known: {', '.join(ENGINES)} (and passthrough)")
