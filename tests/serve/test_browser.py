"""The chat page in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`, driven by
Selenium) loads the page from the server, sends a message, and sees the reply stream in."""

from __future__ import annotations

import pytest

from scratchlm.serve.server import BackgroundServer
from tests.browser import chromium, needs_browser, wait_for

pytestmark = [pytest.mark.slow, needs_browser]


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def server(make_service):
    with BackgroundServer(make_service(max_batch=2), api_key="page-key") as url:
        yield url


def test_a_message_gets_a_streamed_reply(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    browser.execute_script("localStorage.setItem('scratchlm-key', 'page-key')")  # as the key field does
    browser.get_log("browser")  # drop the first load's 401 for /v1/models (no key yet)
    browser.get(server + "/")
    assert browser.title == "scratchlm chat"
    wait_for(lambda: browser.find_element(By.ID, "model").text == "tiny", 10, "no model list")
    browser.find_element(By.ID, "max_tokens").clear()
    browser.find_element(By.ID, "max_tokens").send_keys("12")
    browser.find_element(By.ID, "input").send_keys("Hello <b>model</b>")
    browser.find_element(By.ID, "send").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".assistant[data-done='true']"), 60, "no reply")
    user = browser.find_element(By.CSS_SELECTOR, ".user")
    reply = browser.find_element(By.CSS_SELECTOR, ".assistant")
    assert user.text == "Hello <b>model</b>"  # shown as text, not as markup
    assert not user.find_elements(By.TAG_NAME, "b")
    assert "error" not in reply.get_attribute("class")
    assert "chunks in" in reply.text and len(reply.text.split("\n")[0]) > 0
    browser.save_screenshot(str(tmp_path / "chat.png"))
    assert (tmp_path / "chat.png").stat().st_size > 1000
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def test_the_page_reports_a_wrong_key(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    browser.execute_script("localStorage.setItem('scratchlm-key', 'wrong')")
    browser.get(server + "/")
    browser.find_element(By.ID, "reset").click()
    browser.find_element(By.ID, "input").send_keys("hi")
    browser.find_element(By.ID, "send").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".assistant.error"), 30, "no error shown")
    assert "API key" in browser.find_element(By.CSS_SELECTOR, ".assistant.error").text
