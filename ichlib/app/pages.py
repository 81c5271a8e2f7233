"""The reader app: analyse one CT series with the trained models, see Grad-CAM, keep a history.

Start it with ``python -m ichlib app`` (or ``make app``); Streamlit's own options pass through, e.g.
``python -m ichlib app --server.port 8600``. Its data (uploads, the history database) live under
``<data>/app/``; the models are the finished runs under ``<data>/runs/``. The logic is in ``ichlib.app.service``
and ``ichlib.app.history``; this file only lays it out.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from ichlib import figures, store  # noqa: E402
from ichlib.app import exports, service, upload  # noqa: E402
from ichlib.app.history import History  # noqa: E402
from ichlib.preprocess import PRESETS, window  # noqa: E402
from ichlib.labels import ANY, LABELS  # noqa: E402
from ichlib.rsna import read_hu  # noqa: E402

PAGES = ("Start", "Analysis", "History", "About")
ROOT = store.data_root()
APP_DIR = ROOT / "app"


@st.cache_resource
def _history() -> History:
    return History(APP_DIR / "history.sqlite")


def _runs() -> pd.DataFrame:
    runs = service.available_runs(ROOT / "runs")
    runs["label"] = [f"{Path(f).name}  ({source})" for f, source in zip(runs["folder"], runs["source"])]  # unique
    return runs


def _local_studies() -> dict[str, pd.DataFrame]:
    """Indexes of the data sets already scanned under ``<data>/index``."""
    found = {}
    for csv in sorted((ROOT / "index").glob("*/index.csv")):
        found[csv.parent.name] = store.read_index(csv)
    return found


def _analyse(series: upload.Series, folders: list[str]) -> None:
    read = service.analyse_series if st.session_state.get("whole_series") else service.analyse
    try:
        with st.spinner(f"Analysing {len(series.slices)} slices with {len(folders)} model(s)..."):
            report = read(series, folders)
    except upload.InputError as exc:
        upload.discard(series)
        st.error(upload.literal(str(exc)))
        return
    upload.discard(st.session_state.get("series"))  # the previous upload is no longer shown: its files go
    try:
        report_id = _history().add(report)
    except Exception as exc:  # a corrupt or read-only History file must not lose the analysis just made
        report_id = None
        st.session_state["history_problem"] = upload.page_error("History", exc)
    st.session_state.update(series=series, report=report, folders=folders, report_id=report_id, goto="Analysis")
    st.rerun()


def start_page() -> None:
    st.header("Start")
    upload.purge_uploads(APP_DIR / "uploads")
    runs = _runs()
    if runs.empty:
        st.warning("No trained model yet: build the book first (`make book`), which trains them.")
        return
    chosen = st.multiselect("Model(s): one, or several averaged", list(runs["label"]), default=list(runs["label"][:1]),
                            key="models")
    folders = list(runs.set_index("label").loc[chosen, "folder"]) if chosen else []
    if service.series_model_for(folders) is not None:
        st.checkbox("Read the whole series (the series model trained on these models' features)", value=False,
                    key="whole_series")
    else:
        st.session_state["whole_series"] = False
    left, right = st.columns(2)
    with left:
        st.subheader("Upload a series")
        files = st.file_uploader("The DICOM files of one CT series", accept_multiple_files=True, key="upload")
        if st.button("Analyse the upload", disabled=not files or not folders, key="analyse_upload"):
            try:
                series = upload.receive([(f.name, f.getvalue()) for f in files], APP_DIR / "uploads")
            except upload.InputError as exc:
                st.error(upload.literal(str(exc)))
                return
            _analyse(series, folders)
    with right:
        st.subheader("Or a study of a local data set")
        local = _local_studies()
        if not local:
            st.info("No local data set has been scanned yet.")
            return
        source = st.selectbox("Data set", list(local), key="source")
        index = local[source]
        counts = index.groupby("study").size()
        study = st.selectbox("Study", list(counts.index), key="study",
                             format_func=lambda s: f"{s} ({counts[s]} slices)")
        if st.button("Analyse the study", disabled=not folders, key="analyse_study"):
            try:
                series = upload.cohort_series(index, study)
            except upload.InputError as exc:
                st.error(upload.literal(str(exc)))
                return
            _analyse(series, folders)


def analysis_page() -> None:
    st.header("Analysis")
    report = st.session_state.get("report")
    if report is None:
        st.info("Nothing analysed yet: choose a series on the Start page.")
        return
    series, folders = st.session_state["series"], st.session_state["folders"]
    if st.session_state.get("history_problem"):
        st.warning("This analysis was not stored in History: " + st.session_state.pop("history_problem"))
    st.caption(f"{len(report.ids)} slices, {len(report.models)} model(s), analysed in {report.seconds:.1f} s. "
               f"Research software trained on {service.trained_on(folders)}: not for diagnosis.")
    for name, reason in series.rejected:
        st.warning(f"Left out {upload.literal(name)}: {upload.literal(reason)}")
    st.table(pd.DataFrame({"value": {k: upload.literal(v) for k, v in report.details.items()}}).rename_axis("detail"))
    study = pd.DataFrame({"probability": report.study_probs, "study threshold": report.study_cutoffs,
                          "slices at or above it": report.study_slices, "positive": report.study_flagged})
    st.caption("A study is decided with thresholds chosen on the models' validation studies (its highest slice "
               "against them), a slice with thresholds chosen on validation slices; a subtype is flagged only where "
               "`any` is (`any` is the union of the subtypes)."
               + ("" if report.study_thresholds is not None else " The validation studies of these models are not "
                  "at hand here: the study uses the slice thresholds."))
    st.subheader("Study")
    st.dataframe(study.style.format({"probability": "{:.3f}", "study threshold": "{:.3f}"}), key="study_table")
    st.subheader("Slice viewer")
    if len(report.ids) > 1:
        position = st.slider("Slice (ordered by z)", 1, len(report.ids), int(report.probs[:, ANY].argmax()) + 1,
                             key="slice") - 1
    else:  # a slider needs two positions
        position = 0
        st.caption("One slice in this series.")
    win = st.selectbox("Window", list(PRESETS), index=list(PRESETS).index("brain"), key="window")
    label = st.selectbox("Grad-CAM label", list(LABELS), key="label")
    show_cam = st.checkbox("Grad-CAM overlay", value=True, key="cam")
    opacity = st.slider("Overlay opacity", 0.0, 1.0, figures.OVERLAY_ALPHA, 0.05, key="opacity", disabled=not show_cam)
    hu = read_hu(series.slices["path"].iloc[position])
    fig, ax = plt.subplots(figsize=(5, 5))
    image = window(hu, PRESETS[win].center, PRESETS[win].width)
    heat = None
    if show_cam:
        heat = service.slice_heatmap(series, folders, position, label, hu.shape)  # through the crop box
        figures.overlay(ax, image, heat, title=f"{upload.plot_text(report.ids[position])}: p({label}) = "
                        f"{report.probs[position, LABELS.index(label)]:.3f}", alpha=opacity)
    else:
        ax.imshow(image, cmap="gray")
        ax.axis("off")
    st.pyplot(fig)
    plt.close(fig)
    st.subheader("Every slice")
    st.dataframe(report.table().round(3), key="slice_table")
    _downloads(series, report, folders, position, image, heat, opacity)


def _downloads(series, report, folders, position, image, heat, opacity) -> None:
    """The report as CSV and JSON, the study's findings as a DICOM SR, the shown overlay as a DICOM capture."""
    st.subheader("Export")
    name = f"ichbook-report-{st.session_state.get('report_id') or 'unsaved'}"
    columns = st.columns(4)
    columns[0].download_button("Slices (CSV)", exports.report_csv(report), f"{name}.csv", "text/csv",
                               key="download_csv")
    columns[1].download_button("Report (JSON)", exports.report_json(report, service.trained_on(folders)),
                               f"{name}.json", "application/json", key="download_json")
    try:
        key = f"sr-{id(report)}"  # the SR reads every slice's header: once per report, not at every slider move
        if key not in st.session_state:
            st.session_state[key] = exports.dicom_bytes(exports.structured_report(series, report))
        sr = st.session_state[key]
        columns[2].download_button("Findings (DICOM SR)", sr, f"{name}-sr.dcm", "application/dicom",
                                   key="download_sr")
        if heat is not None:
            capture = exports.secondary_capture(series, position, exports.burned_overlay(image, heat, opacity))
            columns[3].download_button("This overlay (DICOM)", exports.dicom_bytes(capture),
                                       f"{name}-slice{position + 1}.dcm", "application/dicom", key="download_sc")
    except Exception as exc:  # the CSV and JSON stay available when a header cannot make a DICOM object
        st.warning(upload.page_error("DICOM export", exc))


def history_page() -> None:
    st.header("History")
    table = _history().table()
    if table.empty:
        st.info("No analysis stored yet.")
        return
    st.dataframe(table.round(3), key="history_table")
    ids = list(table["id"])
    asked = st.session_state.get("report_choice")
    if asked is not None and asked not in ids:  # deleted meanwhile: by this session, or by another (say so)
        del st.session_state["report_choice"]
        if st.session_state.pop("deleted_here", None) == asked:
            st.success(f"Report {asked} deleted.")
        else:
            st.warning(f"Report {asked} no longer exists: it was deleted in another session. Choose another.")
            return
    chosen = st.selectbox("Report", ids, key="report_choice")
    left, right = st.columns(2)
    if left.button("Open", key="open_report"):
        try:
            st.json(_history().get(chosen))
        except KeyError:
            st.warning(f"Report {chosen} no longer exists: it was deleted, perhaps in another session.")
    if right.button("Delete", key="delete_report"):
        if not _history().delete(chosen):
            st.warning(f"Report {chosen} was already deleted, perhaps in another session.")
            return
        st.session_state["deleted_here"] = chosen
        st.rerun()


def about_page() -> None:
    st.header("About")
    st.markdown(
        "This app reads one head-CT series and estimates, per slice and per study, the probability of "
        "intracranial haemorrhage (`any`) and of its five subtypes, with the models the book trains "
        "(EfficientNetB2, ResNet50, DenseNet121, as in the paper it re-builds). Grad-CAM shows where a "
        "model's evidence lies. **It is research software, not a medical device.**")
    runs = _runs()
    if not runs.empty:
        st.subheader("The models and how they did on their own test patients")
        st.dataframe(service.model_scores(runs).round(3), key="about_models")
    kinds = set(runs["phantom"]) if not runs.empty else set()
    limits = ("Models trained on the phantom have never seen a real scan; their numbers are phantom numbers. "
              if True in kinds else "")
    limits += ("Models trained on real data were scored on their own test patients, one hospital mix and one "
               "period; other scanners and populations may differ. " if False in kinds else "")
    st.markdown(
        f"**Limits.** {limits}Slice thickness, reconstruction kernel, motion and metal all change what a model "
        "sees.\n\n"
        "**Data.** Uploads are kept under the app's data folder with names the app makes up; the history keeps "
        "only what its page shows.\n\n"
        "**Contact.** The project's issue tracker (see the README).")


def main() -> None:
    upload.quiet_pydicom()
    st.set_page_config(page_title="ichbook reader", layout="wide")
    if "goto" in st.session_state:
        st.session_state["page"] = st.session_state.pop("goto")
    page = st.sidebar.radio("Page", PAGES, key="page")
    st.sidebar.caption("ichbook: ICH on head CT. Research software, not a medical device.")
    show = {"Start": start_page, "Analysis": analysis_page, "History": history_page, "About": about_page}[page]
    try:
        show()
    except Exception as exc:  # one boundary per page (Streamlit's own reruns and stops are not Exceptions)
        st.error(upload.page_error(page, exc))


main()
