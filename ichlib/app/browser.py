"""The reader app in a real headless browser: serve it on localhost, walk through it, take screenshots.

Used by the end-to-end test and by the app chapter (whose screenshots it takes); the browser itself is
``ichlib.chromium``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ichlib.chromium import driver

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(data_root: str | Path, port: int | None = None, timeout: float = 90):
    """Run ``python -m ichlib app`` on 127.0.0.1 with ``data_root`` as its data; yield its URL; stop it after."""
    from . import app_command

    port = port or free_port()
    env = {**os.environ, "ICHBOOK_DATA": str(data_root)}
    command = app_command(["--server.port", str(port), "--server.address", "127.0.0.1"])
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the app exited with {process.returncode}: {process.stdout.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def walkthrough(url: str, out_dir: str | Path, timeout: float = 120) -> dict[str, Path]:
    """Open the app, analyse the first local study with the default model, visit History and About.

    Returns the screenshots taken (``start``, ``analysis``, ``history``, ``about``) and raises if a step's
    expected text does not appear in time.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shots = {}
    browser = driver()
    wait = WebDriverWait(browser, timeout)

    def text_appears(text: str) -> None:
        wait.until(seen.presence_of_element_located((By.XPATH, f"//*[contains(text(), {text!r})]")))

    def click(xpath: str) -> None:
        wait.until(seen.element_to_be_clickable((By.XPATH, xpath))).click()

    def page(name: str) -> None:
        click(f"//section[@data-testid='stSidebar']//label[.//*[text()={name!r}]]")

    def shot(name: str) -> None:
        time.sleep(1.0)  # let the last elements paint
        shots[name] = out / f"app_{name}.png"
        browser.save_screenshot(str(shots[name]))

    try:
        browser.get(url)
        text_appears("Or a study of a local data set")
        shot("start")
        click("//button[.//*[text()='Analyse the study']]")
        text_appears("analysed in")
        text_appears("Slice viewer")
        wait.until(seen.presence_of_element_located((By.XPATH, "//img")))
        shot("analysis")
        page("History")
        text_appears("Report")
        shot("history")
        page("About")
        text_appears("not a medical device")
        shot("about")
    except Exception:
        browser.save_screenshot(str(out / "app_failed.png"))  # what the browser showed when a step failed
        raise
    finally:
        browser.quit()
    return shots


def upload(url: str, files: list[str | Path], out_dir: str | Path, timeout: float = 120) -> str:
    """Upload files on the Start page, analyse them, and return the Analysis page's HTML (a screenshot of it is
    kept in ``out_dir`` as ``app_upload.png``); raises if no analysis appears in time."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    browser = driver()
    wait = WebDriverWait(browser, timeout)
    try:
        browser.get(url)
        chooser = wait.until(seen.presence_of_element_located((By.XPATH, "//input[@type='file']")))
        chooser.send_keys("\n".join(str(Path(f).resolve()) for f in files))
        wait.until(seen.element_to_be_clickable((By.XPATH, "//button[.//*[text()='Analyse the upload']]"))).click()
        wait.until(seen.presence_of_element_located((By.XPATH, "//*[contains(text(), 'analysed in')]")))
        wait.until(seen.presence_of_element_located((By.XPATH, "//img")))
        time.sleep(1.0)
        return browser.page_source
    finally:
        browser.save_screenshot(str(Path(out_dir) / "app_upload.png"))
        browser.quit()


if __name__ == "__main__":  # python -m ichlib.app.browser OUT_DIR: screenshots of the app on this machine's data
    from ..store import data_root

    with serve(data_root()) as address:
        print(walkthrough(address, sys.argv[1] if len(sys.argv) > 1 else "app_screenshots"))
