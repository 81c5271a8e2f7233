"""The reader app: analyse one head-CT series with the trained models, see Grad-CAM, keep a history.

- ``upload``: what the app receives (checked uploads, names never paths, retention), tested without a browser.
- ``service``: the analysis, heatmaps and the models' scores shown on the About page, tested without a browser.
- ``exports``: the report as CSV, JSON, a DICOM SR and a secondary capture.
- ``history``: every analysis in one SQLite file.
- ``pages``: the Streamlit pages (run by ``python -m ichlib app``); they only lay out what the service returns.
- ``browser``: serves the app and walks it in headless Chromium (the end-to-end test, the chapter's screenshots).
"""

from __future__ import annotations

import sys
from pathlib import Path

PAGES_SCRIPT = Path(__file__).with_name("pages.py")


LOCALHOST = "127.0.0.1"


def app_command(streamlit_args: list[str]) -> list[str]:
    """The command that serves the reader app: on this machine only (127.0.0.1: its history holds patient IDs
    and it has no login), offline, no usage statistics, the upload limit of ``upload.MAX_TOTAL_MB``. Options
    given after ``app`` (Streamlit's own, e.g. ``--server.port 8600``, or ``--server.address 0.0.0.0`` to serve
    other machines, deliberately) win."""
    from .upload import MAX_TOTAL_MB

    defaults = {"--server.address": LOCALHOST, "--server.headless": "true", "--browser.gatherUsageStats": "false",
                "--server.maxUploadSize": str(MAX_TOTAL_MB), "--client.toolbarMode": "viewer",
                "--client.showErrorDetails": "none"}  # no traceback (with server paths) on a page
    given = {arg.split("=")[0] for arg in streamlit_args if arg.startswith("--")}
    kept = [item for option, value in defaults.items() if option not in given for item in (option, value)]
    return [sys.executable, "-m", "streamlit", "run", str(PAGES_SCRIPT), *kept, *streamlit_args]
