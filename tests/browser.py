"""Headless Chromium for the tests that need a real browser (Debian's `chromium` + `chromium-driver`, driven
by Selenium; `.ci/run` installs them): the report pages and the chat page. Without them those tests skip."""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="needs chromium and chromedriver (.ci/run installs them)"
)


@contextmanager
def chromium(width: int = 1200, height: int = 2400):
    """A headless Chromium that keeps the page's console log."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        browser.set_window_size(width, height)
        yield browser
    finally:
        browser.quit()


def wait_for(condition, seconds: float, what: str) -> None:
    """Poll `condition()` until it is true; fail saying `what` did not happen within `seconds`."""
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"{what} within {seconds:g} s"
        time.sleep(0.05)


def render_page(browser, page: Path, screenshot: Path) -> list:
    """Open a local HTML file, wait until it has loaded, take a screenshot; return each image's natural width
    (0 for one that failed to load). Fails on a SEVERE console message."""
    browser.get(page.resolve().as_uri())
    loaded = lambda: browser.execute_script("return document.readyState") == "complete"  # noqa: E731
    wait_for(loaded, 10, f"{page} did not finish loading")
    widths = browser.execute_script("return [...document.images].map(i => i.complete && i.naturalWidth)")
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000, "an empty screenshot"
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    return widths
