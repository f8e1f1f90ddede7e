"""Selenium steps shared by the browser tests (Debian's Chromium and chromedriver)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.console import PASSWORDS


def wait(driver: Any, timeout: float = 60) -> WebDriverWait:
    return WebDriverWait(driver, timeout, poll_frequency=0.25)


def text_of(driver: Any, css: str) -> str:
    """Visible text of the first match, read in one script (htmx may swap the element at any time)."""
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : '';", css))


def login(driver: Any, url: str, name: str, next_path: str = "/batches") -> None:
    driver.get(f"{url}{next_path}")
    wait(driver).until(ec.presence_of_element_located((By.ID, "username")))  # redirected to the login page
    assert "/login" in driver.current_url
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.ID, "login-submit").click()
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "whoami"), name))


def logout(driver: Any) -> None:
    driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
    wait(driver).until(ec.presence_of_element_located((By.ID, "username")))


def load_ms(driver: Any) -> float:
    """Navigation start to load event end of the current page (ms), from the Navigation Timing API."""
    return float(driver.execute_script(
        "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;"))


def post_status(driver: Any, path: str, with_csrf: bool) -> int:
    """Status of a form POST made by the page's own JavaScript (fetch), with or without its CSRF token."""
    return int(driver.execute_async_script("""
        const [path, withCsrf, done] = arguments;
        const body = new URLSearchParams();
        if (withCsrf) body.set('csrf', document.querySelector('meta[name=csrf-token]').content);
        fetch(path, {method: 'POST', body, redirect: 'manual'}).then(r => done(r.status), () => done(-1));
    """, path, with_csrf))


def mark_page(driver: Any) -> None:
    """A flag in this document: it is gone after any reload or navigation."""
    driver.execute_script("window.__cofiNoReload = 'same-document';")


def same_page(driver: Any) -> bool:
    return driver.execute_script("return window.__cofiNoReload || null;") == "same-document"


def screenshot(driver: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return Math.min(document.body.scrollHeight, 2400);")
    driver.set_window_size(1400, max(900, int(height)))
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path
