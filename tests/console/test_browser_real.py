"""A real batch of generated calls (real denoise, IVR, Whisper LID/STT, the local LLM, rules) watched
and reviewed in a real headless Chromium: the batch reaches Completed without a reload, a call's
audio plays and seeks from the transcript, its evidence is highlighted, a reaudit from the page
flips the verdict, and a reviewer is refused the controls. Writes screenshots of both pages
(to CONSOLE_SCREENSHOT_DIR, default the test's tmp dir)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select
from sqlalchemy import Engine, text

from cofi.devtools import synth
from cofi.pipeline.stages import STAGES
from cofi.settings import Settings
from tests.support import browser
from tests.support.console import ConsoleServer, Pipeline, chromium, real_engines
from tests.support.tracker import batch_start, submit

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BATCH = 4301
QUESTIONNAIRE = json.dumps({"id": "console", "questions": [  # two LLM questions keep the run to minutes
    {"id": "recording_disclosed", "text": "Did the agent say that the call is recorded?", "weight": 2},
    {"id": "order_confirmed", "text": "Did the agent repeat the order (shares and price) back to the customer?",
     "weight": 1},
]})
RULES = json.dumps({"rules": [{"id": "no-long-silence", "description": "no silence over 60 s", "severity": "minor",
                               "expression": "speech.longestSilenceSec < 60"}]})
STRICT_RULES = """rules:
  - id: calls-under-a-second
    description: a rule no real call passes, so the verdict must flip
    severity: critical
    expression: speech.durationSec < 1
"""


def test_real_batch_in_the_browser(settings: Settings, db_engine: Engine, llm_server: str, tmp_path: Path) -> None:
    started = time.monotonic()
    shots = Path(os.environ.get("CONSOLE_SCREENSHOT_DIR") or tmp_path / "screenshots")
    calls = tmp_path / "calls"
    synth.make_batch(calls, 3, seed=21, ivr=True, stereo=True, snr_db=25, turns=5)
    s = settings.model_copy(update={"llm_base_url": llm_server, "llm_max_retries": 2, "max_attempts": 2,
                                    "stage_concurrency": 1})
    driver = chromium(tmp_path)
    timings: dict[str, float] = {}
    try:
        with Pipeline(s, real_engines(s, list(STAGES))), ConsoleServer(s) as console:
            browser.login(driver, console.url, "olivia")
            submit(s, {**batch_start(BATCH, 0), "files": [], "manifest": str(calls / "manifest.csv"),
                       "rules": RULES, "questionnaire": QUESTIONNAIRE, "submittedBy": "qa@ci"})
            link = browser.wait(driver, 60).until(ec.element_to_be_clickable((By.LINK_TEXT, str(BATCH))))
            link.click()
            browser.wait(driver).until(ec.presence_of_element_located((By.ID, "batch-status")))
            timings["batch page load (ms)"] = browser.load_ms(driver)
            browser.mark_page(driver)
            seen = {browser.text_of(driver, "#batch-status")}
            deadline = time.monotonic() + 900
            while browser.text_of(driver, "#batch-status") != "Completed":
                assert time.monotonic() < deadline, f"batch not Completed: {browser.text_of(driver, '#live')}"
                seen.add(browser.text_of(driver, "#batch-status"))
                time.sleep(1)
            timings["submit to Completed (s)"] = time.monotonic() - started
            assert browser.same_page(driver) and "InProgress" in seen, seen  # watched live, no reload
            assert browser.text_of(driver, "#completed-files") == "3"
            verdicts = "#files-table td:nth-child(5) .badge"
            browser.wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, verdicts)) == 3)
            browser.screenshot(driver, shots / "console-batch.png")

            driver.find_elements(By.CSS_SELECTOR, "a.call-link")[0].click()
            browser.wait(driver).until(ec.presence_of_element_located((By.ID, "player")))
            timings["call page load (ms)"] = browser.load_ms(driver)
            browser.wait(driver).until(lambda d: d.execute_script("return document.getElementById('player').readyState") >= 2)
            driver.execute_script("document.getElementById('player').play();")
            browser.wait(driver).until(lambda d: d.execute_script("return document.getElementById('player').currentTime") > 0)
            turns = driver.find_elements(By.CSS_SELECTOR, ".turn[data-start]")
            assert len(turns) >= 4
            target = turns[3]
            start = float(target.get_attribute("data-start"))
            driver.execute_script("document.getElementById('player').pause();")
            target.click()
            browser.wait(driver).until(lambda d: abs(d.execute_script(
                "return document.getElementById('player').currentTime") - start) < 1.5)
            marks = driver.find_elements(By.CSS_SELECTOR, "mark.ev")
            assert marks, "no evidence highlighted in the transcript"
            located = driver.find_elements(By.CSS_SELECTOR, "#answers button.seek")
            assert located
            ev_id = located[0].find_element(By.XPATH, "./ancestor::tr").get_attribute("data-ev-target")
            ActionChains(driver).move_to_element(located[0]).perform()
            browser.wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, f'mark.ev.active[data-ev~="{ev_id}"]'))
            first_verdict = browser.text_of(driver, "#verdict")
            assert first_verdict in ("pass", "fail")
            browser.screenshot(driver, shots / "console-call.png")
            call_url = driver.current_url

            driver.get(f"{console.url}/batches/{BATCH}")
            driver.find_element(By.ID, "control-reaudit").click()
            Select(browser.wait(driver).until(ec.presence_of_element_located((By.ID, "from-stage")))).select_by_value("llm2")
            driver.find_element(By.ID, "rules").send_keys(STRICT_RULES)
            driver.find_element(By.ID, "confirm-reaudit").click()
            browser.wait(driver).until(ec.presence_of_element_located((By.ID, "sent-notice")))
            driver.get(call_url)
            browser.mark_page(driver)
            browser.wait(driver, 300).until(ec.text_to_be_present_in_element((By.ID, "verdict"), "critical_fail"))
            assert browser.same_page(driver), "the verdict must update without a reload"
            assert "calls-under-a-second" in browser.text_of(driver, "#rules")

            browser.logout(driver)
            browser.login(driver, console.url, "rita", f"/batches/{BATCH}")
            assert driver.find_elements(By.ID, "read-only") and not driver.find_elements(By.ID, "control-reaudit")
            assert browser.post_status(driver, f"/batches/{BATCH}/control/reaudit", with_csrf=True) == 403
            driver.get(f"{console.url}/batches/{BATCH}/control/cancel")
            assert browser.text_of(driver, "#error-title") == "Not allowed"
    finally:
        driver.quit()
    with db_engine.connect() as c:
        verdicts = c.execute(text("SELECT verdict FROM auditResult WHERE batchId = :b"), {"b": BATCH}).scalars().all()
    assert verdicts == ["critical_fail"] * 3
    timings["whole test (s)"] = time.monotonic() - started
    print("\n" + "\n".join(f"{k}: {v:.1f}" for k, v in timings.items()))
