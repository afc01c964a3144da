"""The page ``asr serve`` shows at ``/``, in a real browser: headless Chromium (through
Selenium) uploads speech to the real server, run as a user runs it, and reads the page.

Choosing a file in the page sends it at once (its #transcribe button only sends the last
audio again), so the test just fills the file input; Chromium's fake microphone (a beep)
stands in for a voice when the page records, and plays a spoken WAV file (in a loop) for live
captions. The checks hold for any model the demo trains: they look at the shape of what the
page shows, not at the words.

With ``ASR_SCREENSHOT=docs/images/serve-page.png`` the test also copies its screenshot there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

webdriver = pytest.importorskip("selenium.webdriver", reason="the page test needs selenium (pip install 'asr[test]')")
from selenium.webdriver import ActionChains  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SENTENCE = "hello there, the weather is good today and we go home"
WAIT_S = 30.0  # for the server's answer: the model decodes on a shared, possibly busy, CPU
PAUSE_S = 1.5  # silence after the live test's sentence: a pause closes the open segment


@pytest.fixture
def open_browser():
    """Starts headless Chromium with a fake microphone (``microphone``: a WAV file it loops;
    without one, a beep); every browser started is closed at the end of the test."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip("the page test needs Debian's chromium and chromium-driver (apt-get install chromium-driver)")
    drivers = []

    def start(microphone: Path | None = None):
        options = webdriver.ChromeOptions()
        options.binary_location = chromium  # with the driver's path below, Selenium Manager never runs (no downloads)
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,800",
                         "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"):
            options.add_argument(argument)
        if microphone is not None:
            options.add_argument(f"--use-file-for-fake-audio-capture={microphone}")
        drivers.append(webdriver.Chrome(options=options, service=Service(chromedriver)))
        return drivers[-1]

    try:
        yield start
    finally:
        for driver in drivers:
            driver.quit()


@pytest.fixture
def browser(open_browser):
    return open_browser()


@pytest.fixture
def server(trained_model: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ASR_API_KEY", None)
    process = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--model", str(trained_model), "--port", "0",
                                "--log-level", "warning"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        assert line.startswith("asr: serving"), line + process.stderr.read()
        yield line.split(" at ")[1].split("/ ")[0]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0


def upload(driver, path: Path) -> None:
    """Choose ``path`` in the page's file input and wait for the page to finish with it."""
    driver.find_element(By.ID, "file").send_keys(str(path))
    finished(driver, path.name)


def finished(driver, name: str) -> None:
    WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(
        lambda d: d.execute_script("const s = document.getElementById('status');"
                                   "return s.textContent.startsWith(arguments[0]) && !s.classList.contains('busy');",
                                   name),
        f"the page did not finish transcribing {name}")


def text(driver, element_id: str) -> str:
    return driver.execute_script("return document.getElementById(arguments[0]).textContent;", element_id).strip()


@pytest.mark.slow
def test_page_transcribes_a_file_and_a_recording_seeks_to_a_clicked_word_and_reports_a_bad_file(
        server: str, browser, espeak: str, tmp_path: Path) -> None:
    speech = tmp_path / "speech.wav"
    subprocess.run([espeak, "-w", str(speech), SENTENCE], check=True, capture_output=True)
    seconds = sf.info(speech).duration
    driver = browser
    driver.get(server + "/")
    assert driver.title.startswith("asr")

    upload(driver, speech)
    assert text(driver, "error") == ""
    duration = float(driver.find_element(By.ID, "transcript").get_attribute("data-duration"))
    assert duration == pytest.approx(seconds, abs=0.05)
    assert f"{duration:.1f} s" in text(driver, "status")
    spans = driver.find_elements(By.CSS_SELECTOR, "#transcript .word")
    words = driver.execute_script(
        "return [...document.querySelectorAll('#transcript .word')].map(w => [w.textContent, w.dataset.start,"
        " w.dataset.end, w.dataset.confidence, w.title, getComputedStyle(w).backgroundColor]);")
    if not spans:  # a model may hear nothing: then the page says so, without an error
        assert driver.find_elements(By.CSS_SELECTOR, "#transcript .empty")
    for word, start, end, confidence, title, background in words:
        start, end, confidence = float(start), float(end), float(confidence)
        assert word and 0 <= start <= end <= duration + 1e-3, (word, start, end)
        assert 0 < confidence <= 1 and f"{confidence:.2f}" in title
        # The shade grows with doubt: its opacity is 0.75 * (1 - confidence).
        alpha = float(background.rstrip(")").split(",")[3]) if background.startswith("rgba") else 1.0
        assert alpha == pytest.approx(0.75 * (1 - confidence), abs=0.02), (word, confidence, background)
    assert driver.execute_script("return document.getElementById('player').src").startswith("blob:")

    if spans:
        # Clicking a word seeks the audio to the word's start and plays from there.
        index = int(np.argmax([float(w[1]) for w in words]))
        driver.execute_script("const p = document.getElementById('player'); window.seekedTo = null;"
                              "p.addEventListener('seeking', () => { window.seekedTo ??= p.currentTime; });")
        spans[index].click()
        wait = WebDriverWait(driver, 10, poll_frequency=0.05)
        seeked = wait.until(lambda d: d.execute_script("return window.seekedTo === null ? null : [window.seekedTo];"),
                            "clicking a word did not seek")
        assert seeked[0] == pytest.approx(float(words[index][1]), abs=0.01)
        wait.until(lambda d: d.execute_script("const p = document.getElementById('player');"
                                              "return !p.paused || p.ended;"), "clicking a word did not play")
        # The word under the playhead is highlighted (paused, so that the playhead stays there).
        longest = int(np.argmax([float(w[2]) - float(w[1]) for w in words]))
        start, end = float(words[longest][1]), float(words[longest][2])
        if end > start:
            driver.execute_script("const p = document.getElementById('player'); p.pause();"
                                  "p.currentTime = arguments[0];", (start + end) / 2)
            wait.until(lambda d: "current" in spans[longest].get_attribute("class").split(),
                       "the word under the playhead is not highlighted")
            assert len(driver.find_elements(By.CSS_SELECTOR, "#transcript .word.current")) == 1

    ActionChains(driver).move_to_element(driver.find_element(By.TAG_NAME, "h1")).perform()  # no hover in the picture
    shot = tmp_path / "serve-page.png"
    assert driver.save_screenshot(str(shot))
    if os.environ.get("ASR_SCREENSHOT"):
        Path(os.environ["ASR_SCREENSHOT"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, os.environ["ASR_SCREENSHOT"])

    # A recording from the (fake) microphone goes up as WebM; a beep may be heard as no words at all.
    record = driver.find_element(By.ID, "record")
    record.click()
    WebDriverWait(driver, 10, poll_frequency=0.1).until(
        lambda d: record.get_attribute("aria-pressed") == "true"
        and d.execute_script("return parseFloat(arguments[0].replace(/^\\D+/, '')) >= 1;", text(d, "status")),
        "the page did not record")
    record.click()
    finished(driver, "recording.webm")
    assert text(driver, "error") == ""
    assert 0.5 < float(driver.find_element(By.ID, "transcript").get_attribute("data-duration")) < 10
    assert driver.find_elements(By.CSS_SELECTOR, "#transcript .word, #transcript .empty")

    # Bytes that are no audio: the page shows the server's own message, and no transcript.
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    upload(driver, junk)
    reply = httpx.post(f"{server}/v1/audio/transcriptions", files={"file": (junk.name, junk.read_bytes())},
                       data={"model": "asr", "response_format": "verbose_json"}, timeout=WAIT_S)
    assert reply.status_code == 400
    assert text(driver, "error") == reply.json()["error"]["message"]
    assert "junk.wav" in text(driver, "error")
    assert not driver.find_elements(By.CSS_SELECTOR, "#transcript .word")


@pytest.mark.slow
def test_live_captions_from_the_microphone(server: str, open_browser, espeak: str, tmp_path: Path) -> None:
    spoken = tmp_path / "spoken.wav"
    subprocess.run([espeak, "-w", str(spoken), SENTENCE], check=True, capture_output=True)
    speech, rate = sf.read(spoken, dtype="int16")
    microphone = tmp_path / "microphone.wav"
    sf.write(microphone, np.concatenate([speech, np.zeros(round(PAUSE_S * rate), np.int16)]), rate, subtype="PCM_16")
    driver = open_browser(microphone)
    driver.get(server + "/")
    live = driver.find_element(By.ID, "live")
    assert live.text == "Live captions" and live.is_enabled()

    live.click()
    WebDriverWait(driver, 20, poll_frequency=0.1).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#captions .word"), "no final words in the live captions")
    assert live.get_attribute("aria-pressed") == "true"
    # While live, nothing else may use the microphone or the server's attention.
    assert not driver.find_element(By.ID, "record").is_enabled()
    assert not driver.find_element(By.ID, "file").is_enabled()
    words = driver.execute_script(
        "return [...document.querySelectorAll('#captions .word')].map(w => [w.textContent, w.dataset.start,"
        " w.dataset.end, w.dataset.confidence]);")
    last = 0.0
    for word, start, end, confidence in words:
        start, end, confidence = float(start), float(end), float(confidence)
        assert word and 0 <= start <= end, (word, start, end)
        assert 0 < confidence <= 1
        assert (start + end) / 2 >= last, words  # finals come in order
        last = end
    # The partial result stays the captions' last element, after the final words.
    assert driver.execute_script("return document.getElementById('captions').lastElementChild.id") == "partial"

    live.click()
    WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(
        lambda d: "stopped" in text(d, "status"), "live captions did not stop")
    assert text(driver, "error") == ""
    assert live.get_attribute("aria-pressed") == "false" and live.is_enabled()
    assert driver.find_element(By.ID, "record").is_enabled() and driver.find_element(By.ID, "file").is_enabled()
    assert text(driver, "partial") == ""
    assert len(driver.find_elements(By.CSS_SELECTOR, "#captions .word")) >= len(words)
