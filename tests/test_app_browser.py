"""End to end in a real headless Chromium: serve the app on localhost, analyse a cohort study, see the result."""

from __future__ import annotations

import pytest

from ichlib.app import browser


@pytest.mark.slow
def test_the_app_analyses_a_study_in_a_real_browser(app_data, tmp_path):
    pytest.importorskip("selenium")
    if browser.chromium() is None:
        pytest.skip("Chromium and chromedriver are not installed here (.ci/run installs them: "
                    "apt-get install chromium chromium-driver)")
    with browser.serve(app_data["root"]) as url:
        shots = browser.walkthrough(url, tmp_path)
    assert set(shots) == {"start", "analysis", "history", "about"}
    assert all(path.stat().st_size > 10_000 for path in shots.values())
