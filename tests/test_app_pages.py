"""The reader app's pages with Streamlit's AppTest: analyse a local study, upload (good and bad files), the
history (open, delete), about."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from ichlib.app import upload  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "ichlib" / "app" / "pages.py")


def fresh():
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at) -> str:
    parts = [e.value for kind in ("markdown", "caption", "error", "warning", "success", "info", "header",
                                  "subheader") for e in getattr(at, kind)]
    return " ".join(str(p) for p in parts)


@pytest.mark.slow
def test_analyse_a_local_study_then_history_open_and_delete(app_env):
    at = fresh()
    assert "Or a study of a local data set" in texts(at)
    at.button(key="analyse_study").click().run()
    assert not at.exception, at.exception
    assert at.sidebar.radio(key="page").value == "Analysis"
    assert "analysed in" in texts(at) and at.session_state["report"].probs.shape[1] == 6
    at.slider(key="opacity").set_value(0.8).run()  # the overlay's opacity, then the exports of what is shown
    assert not at.exception, at.exception
    downloads = at.get("download_button")
    assert len(downloads) == 4, downloads  # CSV, JSON, DICOM SR, the overlay as DICOM
    at.checkbox(key="cam").uncheck().run()  # the viewer without the overlay
    assert len(at.get("download_button")) == 3  # no overlay, nothing to capture
    at.selectbox(key="window").set_value("subdural").run()
    assert not at.exception, at.exception
    at.sidebar.radio(key="page").set_value("History").run()
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) >= 1
    at.button(key="open_report").click().run()
    assert len(at.json) == 1
    before = len(at.dataframe[0].value)
    at.button(key="delete_report").click().run()
    assert not at.exception, at.exception
    after = at.dataframe[0].value if at.dataframe else []
    assert len(after) == before - 1


@pytest.mark.slow
def test_upload_good_and_bad_files(app_env):
    index = app_env["index"]
    rows = index[index["study"] == index["study"].iloc[-1]]
    good = [(Path(p).name, Path(p).read_bytes(), "application/dicom") for p in rows["path"]]
    at = fresh()
    at.file_uploader(key="upload").set_value([("notes.txt", b"not a scan", "text/plain")]).run()
    at.button(key="analyse_upload").click().run()
    assert upload.literal("notes.txt") in " ".join(e.value for e in at.error)  # named, shown as typed
    at.file_uploader(key="upload").set_value(good + [("notes.txt", b"not a scan", "text/plain")]).run()
    at.button(key="analyse_upload").click().run()
    assert not at.exception, at.exception
    assert at.sidebar.radio(key="page").value == "Analysis"
    assert len(at.session_state["series"].slices) == len(good)
    assert at.session_state["series"].rejected[0][0] == "notes.txt"
    assert upload.literal("notes.txt") in " ".join(w.value for w in at.warning)  # said on the analysis page


@pytest.mark.slow
def test_about_shows_the_models_and_the_limits(app_env):
    at = fresh()
    at.sidebar.radio(key="page").set_value("About").run()
    assert "not a medical device" in texts(at)
    assert at.dataframe and "synthetic phantom" in set(at.dataframe[0].value["trained on"])


@pytest.mark.slow
def test_a_one_slice_upload_with_a_markdown_name_beside_it(app_env):
    index = app_env["index"]
    path = Path(index["path"].iloc[0])
    name = "**x** [click](https://evil.example).dcm"
    at = fresh()
    at.file_uploader(key="upload").set_value([("one.dcm", path.read_bytes(), "application/dicom"),
                                              (name, b"not a scan", "text/plain")]).run()
    at.button(key="analyse_upload").click().run()
    assert not at.exception, at.exception
    assert at.sidebar.radio(key="page").value == "Analysis"
    assert "One slice in this series" in texts(at)
    warning = " ".join(w.value for w in at.warning)
    assert r"\*\*x\*\* \[click\]\(https\://evil\.example\)\.dcm" in warning  # escaped: shown as typed


@pytest.mark.slow
def test_a_report_deleted_in_another_session_is_said_not_swapped(app_env):
    """Two readers: one deletes the report the other has chosen; the other is told, and is shown no other one."""
    first = fresh()
    for _ in range(2):  # two reports in History
        first.button(key="analyse_study").click().run()
        first.sidebar.radio(key="page").set_value("Start").run()
    first.sidebar.radio(key="page").set_value("History").run()
    chosen = first.selectbox(key="report_choice").value
    second = fresh()
    second.sidebar.radio(key="page").set_value("History").run()
    second.selectbox(key="report_choice").set_value(chosen).run()
    second.button(key="delete_report").click().run()
    assert not second.exception, second.exception
    assert f"Report {chosen} deleted" in texts(second)
    first.button(key="open_report").click().run()
    assert not first.exception, first.exception
    assert f"Report {chosen} no longer exists" in texts(first) and not first.json
