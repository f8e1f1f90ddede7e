"""The console in a real headless Chromium: logins, the live batch list, refusals and CSRF
(fast, on a passthrough batch), and a real batch of generated calls end to end (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from sqlalchemy import Engine

from cofi.devtools import synth
from cofi.settings import Settings
from tests.support import browser
from tests.support.console import ConsoleServer, Pipeline, chromium
from tests.support.tracker import batch_start, submit

pytestmark = pytest.mark.integration


def test_login_live_batch_list_reviewer_refusal_and_csrf(settings: Settings, db_engine: Engine,
                                                         tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    synth.make_batch(calls, 2, seed=3, ivr=False, stereo=True)
    driver = chromium(tmp_path)
    try:
        with Pipeline(settings), ConsoleServer(settings) as console:
            driver.get(f"{console.url}/batches/1")
            assert "/login?next=/batches/1" in driver.current_url  # no page without a session
            browser.login(driver, console.url, "rita")
            print(f"\nbatches page (empty) load: {browser.load_ms(driver):.0f} ms")
            assert "No batches" in browser.text_of(driver, "#batches")
            browser.mark_page(driver)
            submit(settings, {**batch_start(4201, 0), "files": [], "manifest": str(calls / "manifest.csv"),
                              "submittedBy": "tester@ci"})
            row = "tr[data-batch='4201']"
            browser.wait(driver, 60).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, row), "Completed"))
            assert browser.same_page(driver), "the list must update without a reload"
            assert "tester@ci" in browser.text_of(driver, row)

            driver.find_element(By.LINK_TEXT, "4201").click()
            browser.wait(driver).until(ec.text_to_be_present_in_element((By.ID, "batch-status"), "Completed"))
            print(f"batch page load: {browser.load_ms(driver):.0f} ms")
            assert driver.find_elements(By.ID, "read-only") and not driver.find_elements(By.ID, "control-cancel")
            assert browser.post_status(driver, "/batches/4201/control/cancel", with_csrf=True) == 403
            driver.get(f"{console.url}/batches/4201/control/cancel")
            assert browser.text_of(driver, "#error-title") == "Not allowed"
            assert "only an operator" in browser.text_of(driver, "#error-message")

            driver.get(f"{console.url}/batches/4201")
            browser.logout(driver)
            browser.login(driver, console.url, "olivia", "/batches/4201")
            assert driver.find_elements(By.ID, "control-cancel")
            assert browser.post_status(driver, "/batches/4201/control/resume", with_csrf=False) == 403
            driver.find_element(By.ID, "control-resume").click()
            browser.wait(driver).until(ec.element_to_be_clickable((By.ID, "confirm-resume"))).click()
            browser.wait(driver).until(ec.presence_of_element_located((By.ID, "sent-notice")))
            assert "resume sent" in browser.text_of(driver, "#sent-notice")
    finally:
        driver.quit()
