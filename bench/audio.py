"""Audio-stage benchmark on generated calls: real-time factor per stage, WER, LID accuracy,
IVR end error and denoise SI-SDR gain, on this machine (CPU, or CUDA when present). The redact
stage (Presidio over the transcript + masking the audio) runs after stt on every call.

    .venv/bin/python -m bench.audio --calls 4 --snr 15 [--lid-calls 2] [--compare-raw]

RTF = processing seconds / audio seconds (lower is faster; 0.1 = ten times real time).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from cofi.audit.transcript import PRELUDE_SPEAKER
from cofi.devtools.synth import IVR_PROMPTS, LANGUAGES, make_call
from cofi.devtools.wer import wer
from cofi.pipeline.engine import StageContext
from cofi.pipeline.stages import empty_results
from cofi.settings import Settings


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    ref, est = reference - reference.mean(), estimate - estimate.mean()
    target = (est @ ref) / (ref @ ref) * ref
    return float(10 * np.log10((target @ target) / ((est - target) @ (est - target))))


def _event(path: Path, results: dict[str, Any] | None = None) -> dict[str, Any]:
    res = empty_results()
    res.update(results or {})
    return {"currentAudio": str(path), "audioPath": str(path), "results": res}


def _ctx(settings: Settings, stage: str) -> StageContext:
    return StageContext(stage=stage, worker="bench", settings=settings, batch_id=0, file_id=uuid.uuid4().hex[:20])


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _cuda() -> str:
    try:
        import ctranslate2

        n = ctranslate2.get_cuda_device_count()
    except Exception as exc:  # noqa: BLE001 - report, do not fail the benchmark
        return f"unknown ({exc})"
    return f"{n} CUDA device(s)" if n else "no CUDA device: CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=4, help="English pipeline calls (denoise->ivr->lid->stt)")
    ap.add_argument("--snr", type=float, default=15.0, help="SNR in dB of the generated noise")
    ap.add_argument("--lid-calls", type=int, default=2, help="calls per language for LID accuracy")
    ap.add_argument("--compare-raw", action="store_true", help="also transcribe the un-denoised audio")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from services.denoise.engines import build_engine as denoise_engine
    from services.ivr.engines import build_engine as ivr_engine
    from services.lid.engines import build_engine as lid_engine
    from services.redact.engines import build_engine as redact_engine
    from services.stt.engines import build_engine as stt_engine

    tmp = Path(tempfile.mkdtemp(prefix="cofi-bench-audio-"))
    settings = Settings(artifact_root=tmp / "artifacts", redact_keep_original=True)
    print(f"device: {_cuda()}; WHISPER_MODEL={settings.whisper_model} device={settings.whisper_device} "
          f"compute={settings.whisper_compute_type} beam={settings.whisper_beam_size}")
    (_, load_s) = _timed(lambda: (lid_engine("whisper", settings), stt_engine("whisper", settings)))
    lid, stt = lid_engine("whisper", settings), stt_engine("whisper", settings)
    den, ivr = denoise_engine("spectral", settings), ivr_engine("vad", settings)
    print(f"model load (first, includes assembly check): {load_s:.2f} s")
    red, red_load_s = _timed(redact_engine, "presidio", settings)
    print(f"redact load (spaCy {settings.spacy_model} + Presidio recognizers): {red_load_s:.2f} s")

    rng = random.Random(args.seed)
    secs = {k: 0.0 for k in ("denoise", "ivr", "lid", "stt", "redact")}
    entities = 0
    audio_sec = 0.0
    wers, raw_wers, gains, ivr_err, ivr_ok, prelude_wers = [], [], [], [], 0, []
    for i in range(args.calls):
        path, clean = tmp / f"call_{i}.wav", tmp / f"call_{i}.clean.wav"
        truth = make_call(path, clean_path=clean, turns=rng.randint(3, 5), ivr=True, dtmf=rng.choice(["1", "12", ""]),
                          hold_music=rng.random() < 0.4, stereo=True, snr_db=args.snr, seed=args.seed * 1000 + i)
        audio_sec += truth.duration
        d, t = _timed(den.process, _event(path), _ctx(settings, "denoise"))
        secs["denoise"] += t
        x, c, y = sf.read(path)[0], sf.read(clean)[0], sf.read(d.audio_path)[0]
        gains.append(np.mean([si_sdr(c[:, k], y[:, k]) - si_sdr(c[:, k], x[:, k]) for k in range(2)]))
        v, t = _timed(ivr.process, _event(Path(d.audio_path)), _ctx(settings, "ivr"))
        secs["ivr"] += t
        ok = v.result["ivrDetected"] and abs(v.result["ivrEndSec"] - truth.ivr_end_sec) <= 0.5
        ivr_ok += ok
        ivr_err.append(abs(v.result["ivrEndSec"] - truth.ivr_end_sec))
        cur = Path(v.audio_path or d.audio_path)
        lr, t = _timed(lid.process, _event(cur), _ctx(settings, "lid"))
        secs["lid"] += t
        sr, t = _timed(stt.process, _event(cur, {"lid": {**lr.result, "worker": "b", "engine": "whisper", "durationMs": 0},
                                                 "ivr": {**v.result, "worker": "b", "engine": "vad", "durationMs": 0}}),
                       _ctx(settings, "stt"))
        secs["stt"] += t  # the conversation and, as the pipeline does, the prelude the ivr stage cut
        said, prelude = _split_prelude(sr.result["text"])
        if prelude:
            prelude_wers.append(wer(IVR_PROMPTS["en"], prelude))
        rr, t = _timed(red.process, {**_event(cur, {"stt": {**sr.result, "worker": "b", "engine": "whisper",
                                                            "durationMs": 0}}), "file": path.name, "trades": [],
                                     "redactPolicy": {"entities": [], "audio": "tone"}}, _ctx(settings, "redact"))
        secs["redact"] += t
        entities += sum(e["mentions"] for e in rr.result["entities"])
        wers.append(wer(truth.reference_text, said))
        line = (f"call {i}: {truth.duration:5.1f} s  SI-SDR gain {gains[-1]:+5.1f} dB  ivr end err "
                f"{ivr_err[-1]:.2f} s  lid {lr.result['language']}  WER {wers[-1]:.3f}")
        if args.compare_raw:
            raw = stt.process(_event(path, {"lid": {**lr.result, "worker": "b", "engine": "whisper",
                                                    "durationMs": 0}}), _ctx(settings, "stt"))
            raw_wers.append(wer(truth.reference_text, raw.result["text"]))
            line += f"  (raw, not denoised/trimmed: WER {raw_wers[-1]:.3f})"
        print(line, flush=True)

    lid_right, lid_total, lid_sec, lid_audio = 0, 0, 0.0, 0.0
    for lang in LANGUAGES:
        for j in range(args.lid_calls):
            p = tmp / f"lid_{lang}_{j}.wav"
            tr = make_call(p, language=lang, ivr=False, turns=3, snr_db=args.snr, seed=args.seed * 1000 + 500 + j)
            r, t = _timed(lid.process, _event(p), _ctx(settings, "lid"))
            lid_sec += t
            lid_audio += tr.duration
            lid_total += 1
            lid_right += r.result["language"] == lang
            if r.result["language"] != lang:
                print(f"  lid miss: {lang} -> {r.result['top']}")

    print(f"\n== {args.calls} English stereo calls, {audio_sec:.1f} s of audio, SNR {args.snr:g} dB ==")
    for stage, s in secs.items():
        print(f"{stage:8s} RTF {s / audio_sec:.3f}   ({s:.1f} s total, {s / max(1, args.calls):.2f} s/call)")
    print(f"denoise  SI-SDR gain mean {statistics.mean(gains):+.2f} dB (min {min(gains):+.2f})")
    print(f"ivr      prelude end within 0.5 s: {ivr_ok}/{args.calls}; mean abs error {statistics.mean(ivr_err):.3f} s")
    print(f"stt      WER mean {statistics.mean(wers):.3f} (max {max(wers):.3f}) after denoise+ivr")
    if prelude_wers:
        print(f"stt      IVR prelude transcribed on {len(prelude_wers)}/{args.calls} calls (`ivr:` line), WER mean "
              f"{statistics.mean(prelude_wers):.3f} against the prompt spoken")
    print(f"redact   {entities} PII mentions redacted (names, dates of birth in the generated dialogues)")
    if raw_wers:
        print(f"stt      WER mean {statistics.mean(raw_wers):.3f} on the raw noisy audio (no denoise, no trim)")
    print(f"lid      accuracy {lid_right}/{lid_total} over {', '.join(LANGUAGES)} "
          f"(RTF {lid_sec / lid_audio:.3f})")
    print(f"artifacts in {tmp}")


def _split_prelude(text: str) -> tuple[str, str]:
    """(the conversation's lines, the `ivr:` prelude's text) of stt's labelled transcript."""
    lines = text.splitlines()
    head = f"{PRELUDE_SPEAKER}: "
    return ("\n".join(ln for ln in lines if not ln.startswith(head)),
            " ".join(ln.removeprefix(head) for ln in lines if ln.startswith(head)))


if __name__ == "__main__":
    main()
