"""``python -m ichlib app``: Streamlit's options pass through as the README prints them; 127.0.0.1 unless told."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ichlib.app import LOCALHOST, app_command
from ichlib.app.browser import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_the_app_binds_localhost_unless_the_user_names_an_address():
    command = app_command(["--server.port", "8600"])
    assert command[command.index("--server.address") + 1] == LOCALHOST
    assert command[-2:] == ["--server.port", "8600"]
    for given in (["--server.address", "0.0.0.0"], ["--server.address=0.0.0.0"]):
        command = app_command(given)
        assert command.count("--server.address") == given.count("--server.address")
        assert LOCALHOST not in command


def other_address() -> str | None:
    """This machine's address on its network, where it has one (a UDP 'connect' sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@pytest.mark.slow
def test_the_readme_command_serves_on_the_port_asked_on_localhost_only(app_data):
    port = free_port()
    env = {**os.environ, "ICHBOOK_DATA": str(app_data["root"])}
    process = subprocess.Popen([sys.executable, "-m", "ichlib", "app", "--server.port", str(port)], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while not answers(f"http://127.0.0.1:{port}/_stcore/health"):
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the app did not answer on 127.0.0.1"
            time.sleep(0.5)
        address = other_address()
        if address is not None:
            assert not answers(f"http://{address}:{port}/_stcore/health"), f"the app answers on {address}"
    finally:
        process.terminate()
        process.wait(10)
    deadline = time.monotonic() + 10  # stopping the command stops the server: nothing left serving
    while answers(f"http://127.0.0.1:{port}/_stcore/health"):
        assert time.monotonic() < deadline, "the app outlived the command that started it"
        time.sleep(0.5)


def test_a_page_that_fails_shows_one_line_and_logs_no_message(caplog):
    """Streamlit shows no traceback (showErrorDetails none); a page's own failure is one line on the page, and
    the log holds where it failed, not the message (which may carry a file's UIDs)."""
    import logging

    from ichlib.app import upload

    command = app_command([])
    assert command[command.index("--client.showErrorDetails") + 1] == "none"
    uid = ".".join(["1", "2", "840", "99999", "1"])  # from a file, as the app would read it
    try:
        raise FileNotFoundError(f"/srv/data/app/uploads/{uid}/00001.dcm")
    except FileNotFoundError as exc:
        with caplog.at_level(logging.ERROR, logger="ichlib.app"):
            line = upload.page_error("Analysis", exc)
    assert line.startswith("The Analysis page could not be shown (FileNotFoundError)") and "/srv" not in line
    assert "FileNotFoundError" in caplog.text and "1.2.840.99999" not in caplog.text
