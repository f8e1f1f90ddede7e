"""Speech parameters of a call from per-speaker speech intervals (VAD) and the word count."""

from __future__ import annotations

Interval = tuple[float, float]


def union(intervals: list[Interval]) -> list[Interval]:
    """Sorted, merged intervals."""
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def total(intervals: list[Interval]) -> float:
    return sum(e - s for s, e in union(intervals))


def overlap(a: list[Interval], b: list[Interval]) -> float:
    ua, ub = union(a), union(b)
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in ua for s2, e2 in ub)


def speech_params(duration: float, by_speaker: dict[str, list[Interval]], words: int,
                  agent: str = "agent", customer: str = "customer") -> dict[str, float]:
    """The SpeechParams record.

    talkRatio = agent / (agent + customer) talk time (0 when unknown, e.g. mono);
    silenceRatio = share of the call where nobody speaks (leading/trailing silence included);
    longestSilenceSec = longest gap between two speech stretches (leading/trailing excluded);
    overtalkSec = time both speakers talk at once; speechRateWpm = words per minute of talk.
    """
    everyone = union([iv for ivs in by_speaker.values() for iv in ivs])
    talk = total(everyone)
    agent_t = total(by_speaker.get(agent, []))
    cust_t = total(by_speaker.get(customer, []))
    gaps = [b[0] - a[1] for a, b in zip(everyone, everyone[1:], strict=False)]
    return {
        "durationSec": round(duration, 3),
        "talkTimeAgentSec": round(agent_t, 3),
        "talkTimeCustomerSec": round(cust_t, 3),
        "talkRatio": round(agent_t / (agent_t + cust_t), 4) if agent_t + cust_t > 0 else 0.0,
        "silenceRatio": round(max(0.0, duration - talk) / duration, 4) if duration > 0 else 0.0,
        "longestSilenceSec": round(max(gaps, default=0.0), 3),
        "overtalkSec": round(overlap(by_speaker.get(agent, []), by_speaker.get(customer, [])), 3),
        "speechRateWpm": round(words / (talk / 60), 2) if talk > 0 else 0.0,
    }
