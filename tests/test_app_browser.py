"""End to end in a real headless Chromium: serve the app on localhost, analyse a cohort study, see the result."""

from __future__ import annotations

from pathlib import Path

import pytest

from ichlib import chromium
from ichlib.app import browser


@pytest.mark.slow
def test_the_app_analyses_a_study_in_a_real_browser(app_data, tmp_path):
    pytest.importorskip("selenium")
    if chromium.chromium() is None:
        pytest.skip("Chromium and chromedriver are not installed here (.ci/run installs them: "
                    "apt-get install chromium chromium-driver)")
    with browser.serve(app_data["root"]) as url:
        shots = browser.walkthrough(url, tmp_path)
    assert set(shots) == {"start", "analysis", "history", "about"}
    assert all(path.stat().st_size > 10_000 for path in shots.values())


@pytest.mark.slow
def test_a_hostile_upload_in_a_real_browser_shows_no_traceback(app_data, tmp_path):
    """One good slice (a one-slice series), one cut short after its header, one with a Markdown name."""
    pytest.importorskip("selenium")
    if chromium.chromium() is None:
        pytest.skip("Chromium and chromedriver are not installed here")
    index = app_data["index"]
    good, cut = list(index[index["study"] == index["study"].iloc[0]]["path"][:2])
    files = tmp_path / "files"
    files.mkdir()
    (files / "good.dcm").write_bytes(Path(good).read_bytes())
    content = Path(cut).read_bytes()
    (files / "cut.dcm").write_bytes(content[: len(content) - 3000])
    (files / "**x** [click](http:evil.example).dcm").write_bytes(b"not a scan")
    with browser.serve(app_data["root"]) as url:
        page = browser.upload(url, sorted(files.iterdir()), tmp_path)
    assert "Traceback" not in page and 'data-testid="stException"' not in page
    assert "One slice in this series" in page
    assert "Left out cut.dcm" in page and "pixel data" in page
    assert "**x** [click](http:evil.example).dcm" in page and 'href="http:evil.example"' not in page
