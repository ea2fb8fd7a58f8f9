"""The web page in a real headless Chromium: record from a fake microphone, send, see the answer stream in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf

from tests.sounds import speechlike

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # gitignored; kept by CI
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
