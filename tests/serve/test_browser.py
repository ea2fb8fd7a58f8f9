"""The web page in a real headless Chromium: record from a fake microphone, send, see the answer stream in; fit a
phone's screen; stop an answer; see errors in the conversation. The screenshots of docs/web/ are taken here
(``UPDATE_SCREENSHOTS=1 pytest tests/serve/test_browser.py`` refreshes them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from tests.sounds import speechlike

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"  # gitignored; kept by CI
# Committed pictures of the page; a run refreshes them only when asked (rendering differs by a few pixels
# from run to run, which would leave every test run with changed files).
SCREENSHOTS = ROOT / "docs" / "web" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else ARTIFACTS
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromedriver")


@pytest.fixture
def browser(tmp_path):
    microphone = tmp_path / "microphone.wav"
    sf.write(microphone, speechlike(3.0, seed=5, rate=48000), 48000, subtype="PCM_16")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,800",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    yield driver
    driver.quit()


def test_record_send_and_see_the_answer(server, browser):
    wait = WebDriverWait(browser, 60)
    browser.get(server.url)
    browser.find_element(By.ID, "api-key").send_keys(server.api_key)
    wait.until(lambda d: d.find_element(By.ID, "model").text == "tiny")

    browser.find_element(By.ID, "record").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text == "recording…")
    browser.execute_async_script("setTimeout(arguments[0], 1500)")  # record 1.5 s of the fake microphone
    browser.find_element(By.ID, "record").click()
    wait.until(lambda d: d.find_element(By.ID, "audio-status").text.startswith("recording: "))
    seconds = float(browser.find_element(By.ID, "audio-status").text.split()[1])
    assert 1.0 < seconds < 3.0

    def answers(driver):
        return driver.find_elements(By.CSS_SELECTOR, ".message.assistant")

    browser.find_element(By.ID, "send").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text in ("ready", "error"))
    assert len(answers(browser)) == 1 and "error" not in answers(browser)[0].get_attribute("class")
    assert answers(browser)[0].text.strip()

    # A second turn, text only: the conversation (with the first audio) is sent again.
    browser.find_element(By.ID, "instruction").send_keys("Tell me more.")
    browser.find_element(By.ID, "send").click()
    wait.until(lambda d: len(answers(d)) == 2 and d.find_element(By.ID, "status").text in ("ready", "error"))
    assert "error" not in answers(browser)[1].get_attribute("class"), answers(browser)[1].text
    assert answers(browser)[1].text.strip()

    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "web-chat.png"))


def answers(driver):
    return driver.find_elements(By.CSS_SELECTOR, ".message.assistant")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_page_fits_the_screen_and_enter_sends(server, browser, width):
    """At 390 px (a phone) as at 1280 px: nothing scrolls sideways, before and after a conversation."""
    # Not "mobile": a phone's browser would zoom out to fit a page that is too wide, and hide the overflow.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 844 if width < 600 else 800, "deviceScaleFactor": 1,
                             "mobile": False})
    wait = WebDriverWait(browser, 60)
    browser.get(server.url)
    wait.until(lambda d: d.find_element(By.ID, "model").text == "tiny")
    assert browser.execute_script("return innerWidth") == width
    assert browser.find_element(By.ID, "hint").is_displayed()  # the empty conversation says what to do
    icon = browser.execute_script("return document.querySelector('link[rel=icon]').href")
    assert httpx.get(icon).headers["content-type"].startswith("image/svg")

    def fits(driver) -> bool:
        return driver.execute_script("return document.documentElement.scrollWidth <= innerWidth")

    assert fits(browser)
    browser.find_element(By.ID, "api-key").send_keys(server.api_key)
    for turn, question in enumerate(("Tell me about the cat and the dog.", "And the bird?"), start=1):
        browser.find_element(By.ID, "instruction").send_keys(question, Keys.ENTER)  # Enter sends
        wait.until(lambda d, n=turn: len(answers(d)) == n and d.find_element(By.ID, "status").text == "ready")
    assert [a.text.strip() != "" for a in answers(browser)] == [True, True]
    assert browser.find_element(By.ID, "instruction").get_attribute("value") == ""
    assert not browser.find_element(By.ID, "hint").is_displayed() and fits(browser)
    browser.execute_script("document.activeElement.blur()")  # no blinking caret: the same picture every run
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / f"chat-{width}px.png"))


# An answer that sends one piece and then waits until its request is aborted, as a real stream does.
ENDLESS_ANSWER = """
window.fetch = async (url, options) => new Response(new ReadableStream({
  start(stream) {
    stream.enqueue(new TextEncoder().encode('data: {"choices": [{"delta": {"content": "Once upon"}}]}\\n\\n'));
    options.signal.addEventListener("abort", () => stream.error(new DOMException("aborted", "AbortError")));
  },
}), { status: 200, headers: { "Content-Type": "text/event-stream" } });
"""


def test_stop_ends_an_answer_and_errors_show_in_the_conversation(server, browser):
    wait = WebDriverWait(browser, 60)
    browser.get(server.url)
    wait.until(lambda d: d.find_element(By.ID, "model").text == "tiny")
    browser.find_element(By.ID, "instruction").send_keys("hi", Keys.ENTER)  # no API key
    wait.until(lambda d: d.find_element(By.ID, "status").text == "error")
    error = answers(browser)[-1]
    assert "error" in error.get_attribute("class") and "API key" in error.text

    browser.execute_script(ENDLESS_ANSWER)
    browser.find_element(By.ID, "instruction").send_keys("Tell me a long story.", Keys.ENTER)
    wait.until(lambda d: answers(d)[-1].text == "Once upon")
    stop = browser.find_element(By.ID, "stop")
    assert stop.is_displayed() and not browser.find_element(By.ID, "send").is_displayed()
    stop.click()
    wait.until(lambda d: d.find_element(By.ID, "status").text == "stopped")
    assert "stopped" in answers(browser)[-1].get_attribute("class")
    assert browser.find_element(By.ID, "send").is_displayed() and not stop.is_displayed()
    assert browser.execute_script("return state.history.at(-1)") == {"role": "assistant", "content": "Once upon"}
