"""Validation of what an operator gives the CLI, before anything is sent (CliError, exit 2)."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from urllib.parse import urlparse

from cofi.audit.questionnaire import QuestionnaireError, default_questionnaire, load_questionnaire
from cofi.audit.rules import RulesError, load_rules
from cofi.errors import BatchRejected, CliError, UnknownStageError
from cofi.pipeline import batchcheck
from cofi.pipeline.stages import STAGES
from cofi.pipeline.topics import stage_plan

MAX_BIGINT = batchcheck.MAX_BIGINT


def check_batch_id(batch_id: int, what: str = "batch id") -> None:
    try:
        batchcheck.check_batch_id(batch_id, what)
    except BatchRejected as exc:
        raise CliError(str(exc)) from None


def parse_skip(skip: list[str] | None) -> list[str]:
    """`--skip denoise,ivr --skip llm2` -> optional stage names in pipeline order."""
    names = [s.strip().lower() for item in (skip or []) for s in item.split(",") if s.strip()]
    try:
        stage_plan(names)
    except UnknownStageError as exc:
        raise CliError(f"--skip: {exc}") from None
    return sorted(set(names), key=STAGES.index)


def load_batch_texts(rules: Path | None, questionnaire: Path | None) -> tuple[str | None, str | None]:
    """(rules JSON, questionnaire JSON), validated together so rules name real questions."""
    q_json = None
    q = default_questionnaire()
    if questionnaire is not None:
        try:
            q = load_questionnaire(Path(questionnaire))
        except (QuestionnaireError, OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--questionnaire {questionnaire}: {exc}") from None
        q_json = q.to_json()
    r_json = None
    if rules is not None:
        try:
            r_json = load_rules(Path(rules), questionnaire=q).to_json()
        except (RulesError, OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--rules {rules}: {exc}") from None
    return r_json, q_json


def check_callback(url: str | None) -> None:
    if url is None:
        return
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--callback {url!r} is not an http(s) URL")
    try:
        batchcheck.check_callback(url)
    except BatchRejected as exc:
        raise CliError(f"--callback: {exc}") from None


def submitted_by() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
