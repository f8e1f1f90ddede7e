"""Presidio recognizers of our own, for PII as a call transcript says it.

Presidio's predefined recognizers expect written text ("4111-1111-1111-1111", "a@b.com"); a
transcript says "four one one one ...", "john dot smith at example dot com", "born on the
twelfth of March nineteen eighty". These recognizers read the analysed text line by line (one
line per speaker turn, see `document.py`) and type each finding by the words before it ("account
number is ...", even when the agent asked and the client answered): the nearest context word
decides, then the shape of the number (Luhn, PAN pattern), else ID_NUMBER.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from functools import lru_cache

from presidio_analyzer import EntityRecognizer, RecognizerResult

from cofi.redaction import luhn_ok
from services.redact.spoken import Run, Token, followed_by_unit, number_runs, tokens

CONTEXT_WINDOW = 14  # tokens looked back for a context word (covers the agent's question before the answer)
CONTEXT = {  # a context word -> the type of the number or date said after it
    "card": "CARD_NUMBER", "credit": "CARD_NUMBER", "debit": "CARD_NUMBER", "visa": "CARD_NUMBER",
    "mastercard": "CARD_NUMBER", "amex": "CARD_NUMBER",
    "account": "ACCOUNT_NUMBER", "acct": "ACCOUNT_NUMBER", "demat": "ACCOUNT_NUMBER", "iban": "ACCOUNT_NUMBER",
    "folio": "ACCOUNT_NUMBER",
    "phone": "PHONE_NUMBER", "mobile": "PHONE_NUMBER", "cell": "PHONE_NUMBER", "telephone": "PHONE_NUMBER",
    "landline": "PHONE_NUMBER", "whatsapp": "PHONE_NUMBER", "call": "PHONE_NUMBER", "reach": "PHONE_NUMBER",
    "dial": "PHONE_NUMBER", "ring": "PHONE_NUMBER", "contact": "PHONE_NUMBER",
    "client": "CLIENT_CODE", "code": "CLIENT_CODE", "ucc": "CLIENT_CODE", "customer": "CLIENT_CODE",
    "pan": "PAN", "tax": "PAN",
    "aadhaar": "ID_NUMBER", "aadhar": "ID_NUMBER", "passport": "ID_NUMBER", "ssn": "ID_NUMBER",
    "licence": "ID_NUMBER", "license": "ID_NUMBER", "pin": "ID_NUMBER", "otp": "ID_NUMBER",
    "born": "DATE_OF_BIRTH", "birth": "DATE_OF_BIRTH", "dob": "DATE_OF_BIRTH", "birthday": "DATE_OF_BIRTH",
}
PAN_SHAPE = re.compile(r"[A-Z]{5}\d{4}[A-Z]")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_ORD_WORDS = ("first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|"
              "fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth")
_ORD = rf"(?:\d{{1,2}}(?:st|nd|rd|th)?|(?:twenty|thirty)[ -](?:first|second|third|{_ORD_WORDS})|{_ORD_WORDS})"
_TENS = "ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_YEAR = (rf"(?:\d{{4}}|(?:nineteen|twenty)[ -](?:oh[ -](?:{_UNITS})|(?:{_TENS})(?:[ -](?:{_UNITS}))?)"
         rf"|two thousand(?: and)?(?: (?:{_TENS}|{_UNITS}))?(?: (?:{_UNITS}))?)")
_MON = rf"(?:{'|'.join(MONTHS)})\.?"
DATE_RE = re.compile(
    rf"\b(?:(?:the )?{_ORD},? (?:of )?{_MON}(?:,? (?:of )?{_YEAR})?"
    rf"|{_MON},? (?:the )?{_ORD}(?:,? {_YEAR})?"
    rf"|{_MON},? {_YEAR}"
    rf"|\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}})\b", re.IGNORECASE)
_DOT = r"(?:\s*\.\s*|\s+(?:dot|not|dart)\s+)"  # Whisper writes a spoken "dot" as "dot", "not", "." ...
_LOCAL = r"[\w'.+-]+(?:\s+(?:dot|not|point|underscore|dash|hyphen)\s+[\w'.+-]+)*"
_TLD = r"(?:com|come|calm|net|org|in|co|uk|io|edu|gov|biz|info|us|de|me)"
EMAIL_RE = re.compile(rf"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b{_LOCAL}\s+(?:at|that|@)\s+[\w-]+(?:{_DOT}[\w-]+)*?"
                      rf"{_DOT}{_TLD}\b", re.IGNORECASE)
#: "my email is <anything up to the end of the sentence>": the address, however badly it was transcribed
EMAIL_CONTEXT_RE = re.compile(r"\be-?mail(?:ing|\s+address|\s+id)?(?:\s+is)?[\s:]+((?:[^.?!\n]|\.(?![\s]|$))+)",
                              re.IGNORECASE)
NAME_CONTEXT_RE = re.compile(
    r"\b(?:[Mm]y name is|[Tt]his is|[Nn]ame's|[Ss]peaking with|[Ss]peaking to|[Mm]r\.?|[Mm]rs\.?|[Mm]s\.?|[Mm]iss"
    r"|[Dd]r\.?|[Dd]ear)\s+([A-Z][a-z'-]+(?:[A-Z][a-z'-]+)?(?:\s+[A-Z][a-z'-]+)?)\b")
NOT_NAMES = {"Example", "Bank", "Yes", "No", "Sure", "Okay", "Thank", "Thanks", "Hello", "Hi", "Good", "The", "It",
             "That", "This", "Is", "Sir", "Madam", "Customer", "Agent", "Speaking", "Correct", "Right"}
STREET = ("street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|terrace|close|"
          "crescent|nagar|marg|colony")
ADDRESS_RE = re.compile(rf"\b(?:\d{{1,5}}[a-z]?|(?:{_UNITS}|{_TENS})(?: (?:{_UNITS}))?)\s+(?:[A-Z][a-z]+\s+){{1,3}}"
                        rf"(?:{STREET})\b\.?", re.IGNORECASE)


@lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names) from Faker's English locales: a name list that ships in a package."""
    from importlib import import_module

    first: set[str] = set()
    last: set[str] = set()
    for locale in ("en_US", "en_GB", "en_IN", "en_IE", "en_PK"):
        provider = import_module(f"faker.providers.person.{locale}").Provider
        first |= set(getattr(provider, "first_names", ()))
        last |= set(getattr(provider, "last_names", ()))
    return frozenset(first), frozenset(last)


def lines(text: str) -> Iterator[tuple[int, str]]:
    """(offset, line) of each line of the analysed text."""
    pos = 0
    for line in text.split("\n"):
        yield pos, line
        pos += len(line) + 1


def _shifted(toks: list[Token], offset: int) -> list[Token]:
    return [Token(t.start + offset, t.end + offset, t.text) for t in toks]


def context_type(before: list[Token]) -> str | None:
    """The type named by the nearest context word among the tokens before a finding."""
    for tok in reversed(before[-CONTEXT_WINDOW:]):
        found = CONTEXT.get(tok.core)
        if found is not None:
            return found
    return None


def _result(entity: str, start: int, end: int, score: float, why: str) -> RecognizerResult:
    return RecognizerResult(entity, start, end, score, recognition_metadata={"why": why})


class SpokenNumberRecognizer(EntityRecognizer):
    """Digit strings however spoken or transcribed, typed by context: client codes, account, card, phone and
    PAN numbers, years of birth, and any other identifier of `min_digits`+ digits (ID_NUMBER). Amounts
    and quantities ('$40', '250 shares') and years said without a birth context are left alone."""

    ENTITIES = ["CLIENT_CODE", "ACCOUNT_NUMBER", "CARD_NUMBER", "PAN", "PHONE_NUMBER", "DATE_OF_BIRTH", "ID_NUMBER"]

    def __init__(self, min_digits: int = 4) -> None:
        self.min_digits = min_digits
        super().__init__(supported_entities=self.ENTITIES, name="cofi-spoken-numbers")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: object = None) -> list[RecognizerResult]:
        out: list[RecognizerResult] = []
        seen: list[Token] = []
        for offset, line in lines(text):
            toks = _shifted(tokens(line), offset)
            for run in number_runs(toks):
                entity = self._type(run, seen + toks[:run.first], toks)
                if entity is not None and entity in entities:
                    out.append(_result(entity, toks[run.first].start, toks[run.last].end, 0.8, f"number {run.value}"))
            seen = (seen + toks)[-CONTEXT_WINDOW:]
        return out

    def _type(self, run: Run, before: list[Token], toks: list[Token]) -> str | None:
        n = len(run.digits)
        if followed_by_unit(toks, run):
            return None
        ctx = context_type(before)
        if PAN_SHAPE.fullmatch(re.sub(r"[^A-Z0-9]", "", " ".join(t.text for t in toks[run.first:run.last + 1])
                                      .upper())) or (run.letters and len(run.letters) >= 3 and n >= 3):
            return "PAN" if ctx in (None, "PAN", "PHONE_NUMBER", "ID_NUMBER") else ctx
        if run.letters and n >= 3:
            return ctx if ctx in ("CLIENT_CODE", "ACCOUNT_NUMBER", "PAN", "ID_NUMBER") else "CLIENT_CODE"
        if run.alnum and len(run.letters) >= 2 and len(run.value) >= 5:  # one token like 'LCKV8': an ID's start
            return ctx if ctx in ("CLIENT_CODE", "ACCOUNT_NUMBER", "PAN", "ID_NUMBER") else "PAN"
        if n < self.min_digits and not (n >= 3 and ctx not in (None, "DATE_OF_BIRTH")):
            return None  # short numbers are identifiers only right after a context word ("client code ... 6 6 8")
        if n == 4 and re.fullmatch(r"(19|20)\d\d", run.digits) and ctx != "DATE_OF_BIRTH":
            return None  # a year, not an identifier
        if ctx == "DATE_OF_BIRTH" and n > 8:
            ctx = None  # a long number after "born": not the date itself
        if ctx is not None:
            return ctx
        if 13 <= n <= 19 and luhn_ok(run.digits):
            return "CARD_NUMBER"
        return "ID_NUMBER"


class BirthDateRecognizer(EntityRecognizer):
    """Dates said or written ('the 23rd of December 1983', 'March twelfth nineteen eighty', '12/03/1984')
    after a birth context word, or with a year at least 16 years back."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["DATE_OF_BIRTH"], name="cofi-birth-dates")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: object = None) -> list[RecognizerResult]:
        out = []
        all_toks = tokens(text)
        for m in DATE_RE.finditer(text):
            before = [t for t in all_toks if t.end <= m.start()]
            years = [int(y) for y in re.findall(r"\b(1[89]\d\d|20\d\d)\b", m.group())]
            old = bool(years) and years[0] <= date.today().year - 16
            if context_type(before) == "DATE_OF_BIRTH" or old:
                out.append(_result("DATE_OF_BIRTH", m.start(), m.end(), 0.85, "date of birth"))
        return out


class SpokenEmailRecognizer(EntityRecognizer):
    """Email addresses written or spoken: 'john dot smith at example dot com' (Whisper: 'john not smith at example .com')."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["EMAIL_ADDRESS"], name="cofi-spoken-email")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: object = None) -> list[RecognizerResult]:
        out = [_result("EMAIL_ADDRESS", m.start(), m.end(), 0.9, "email") for m in EMAIL_RE.finditer(text)]
        for m in EMAIL_CONTEXT_RE.finditer(text):
            said = m.group(1)
            if len(said.split()) <= 10 and not said.lower().startswith(("and ", "please", "address", "is ")):
                out.append(_result("EMAIL_ADDRESS", m.start(1), m.end(1), 0.6, "said after 'email'"))
        return out


class NameRecognizer(EntityRecognizer):
    """Names introduced as names ('my name is ...', 'this is ...', 'Mr ...'), and a known first name
    followed by a capitalised word (Faker's English name lists); spaCy's NER finds the rest."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON"], name="cofi-names")

    def load(self) -> None:
        name_lists()

    def analyze(self, text: str, entities: list[str], nlp_artifacts: object = None) -> list[RecognizerResult]:
        out = []
        for m in NAME_CONTEXT_RE.finditer(text):
            words = m.group(1).split()
            while words and words[-1] in NOT_NAMES:
                words.pop()
            if words and words[0] not in NOT_NAMES:
                start = m.start(1)
                out.append(_result("PERSON", start, start + len(" ".join(words)), 0.85, "introduced name"))
        first, last = name_lists()
        toks = tokens(text)
        for a, b in zip(toks, toks[1:], strict=False):
            fa, fb = a.text.strip(".,;:!?\"'"), b.text.strip(".,;:!?\"'")
            if fa in first and fa not in NOT_NAMES and fb[:1].isupper() and fb.isalpha() and fb not in NOT_NAMES \
                    and (fb in last or fb in first) and not a.text.endswith((".", ",", "?", "!")):
                out.append(_result("PERSON", a.start, b.start + len(b.text.rstrip(".,;:!?\"'")), 0.8, "name list"))
        return out


class AddressRecognizer(EntityRecognizer):
    """A house number and a street ('221 Baker Street', 'twelve Park Lane')."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["ADDRESS"], name="cofi-address")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: object = None) -> list[RecognizerResult]:
        return [_result("ADDRESS", m.start(), m.end(), 0.7, "street address") for m in ADDRESS_RE.finditer(text)]


class KnownValuesRecognizer(EntityRecognizer):
    """This call's own identifiers, known before it is heard: the manifest's clientCode and phone and the
    mapped trades' client code, wherever the transcript says them (ad hoc, one per call)."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = {k: v for k, v in known.items() if len(k) >= 4}  # normalised value -> entity type
        super().__init__(supported_entities=sorted(set(self.known.values())) or ["CLIENT_CODE"], name="cofi-known")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: object = None) -> list[RecognizerResult]:
        out = []
        for offset, line in lines(text):
            toks = _shifted(tokens(line), offset)
            for run in number_runs(toks):
                for value, entity in self.known.items():
                    if entity in entities and (run.value == value or (len(run.digits) >= 7 and value.endswith(run.digits))
                                               or (len(value) >= 7 and run.digits.endswith(value))):
                        out.append(_result(entity, toks[run.first].start, toks[run.last].end, 1.0, "known value"))
        return out
