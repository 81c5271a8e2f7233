"""A headless Chromium: where the browser and its driver are, and a Selenium driver on them.

The reading check of the built book (``ichlib.reading``) and the app's walk-through (``ichlib.app.browser``)
both look through it. Needs Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``) and
the ``selenium`` package.
"""

from __future__ import annotations

import shutil

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"


def chromium() -> tuple[str, str] | None:
    """(browser, driver) paths, or None where either is missing."""
    browser = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
    driver = shutil.which(DRIVER)
    return (browser, driver) if browser and driver else None


def driver(width: int = 1400, height: int = 2000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium() or (None, None)
    if browser is None:
        raise RuntimeError("Chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver))
