"""The book runner: papermill execution in chapter order, timings, the build (the parameters: ``ichlib.parameters``).

    python -m ichlib book [--profile P] [--only CHAPTER] [-p KEY VALUE]... [--params FILE.yaml] [--no-build]

- Chapters and their order come from ``_toc.yml``: an entry ``book/chapters/NAME`` is the executed copy of
  ``notebooks/NAME.ipynb`` (sources stay without outputs; executed copies are git-ignored).
- Every parameter is checked before anything runs: a name no chapter declares, or a value of another type than
  the chapter's default, stops the run with a message naming it.
- Each notebook runs under the ``ichbook`` kernel, registered from this environment; the first failing cell stops
  the run with a non-zero exit that names the notebook and the cell (its partial copy is kept under data/book/).
- Per-chapter seconds go to ``data/book/timings.json`` and to the appendix page; then ``jupyter-book build -W``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from . import abstract, machine, store
from .parameters import (ParameterError, cpu_warning, load_profiles, notebook_parameters, parameters_note,
                         profiles_table, resolve)

KERNEL = "ichbook"
EXECUTED = "book/chapters"


class ChapterError(RuntimeError):
    """A chapter notebook failed; names the notebook and the cell."""


def project_root() -> Path:
    """The book being built: ``$ICHBOOK_ROOT`` (set by :func:`run` for its chapters, so a book built elsewhere,
    as the tests build theirs, writes nothing into this checkout), else the checkout, else the working folder."""
    if os.environ.get("ICHBOOK_ROOT"):
        return Path(os.environ["ICHBOOK_ROOT"])
    here = Path(__file__).resolve().parents[1]
    return here if (here / "_toc.yml").exists() else Path.cwd()


@dataclass(frozen=True)
class Chapter:
    name: str
    source: Path    # notebooks/NAME.ipynb
    executed: Path  # book/chapters/NAME.ipynb


def chapters(root: Path) -> list[Chapter]:
    """The chapter notebooks in book order, read from ``_toc.yml``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found = []

    def walk(node):
        if isinstance(node, dict):
            entry = node.get("file")
            if isinstance(entry, str) and entry.startswith(EXECUTED + "/"):
                name = entry.split("/")[-1].removesuffix(".ipynb")
                found.append(Chapter(name, root / "notebooks" / f"{name}.ipynb", root / EXECUTED / f"{name}.ipynb"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def ensure_kernel() -> None:
    """Register this environment's Python as the ``ichbook`` Jupyter kernel, unless it already is."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        if KernelSpecManager().get_kernel_spec(KERNEL).argv[0] == sys.executable:
            return
    except NoSuchKernel:
        pass
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
                    "--display-name", "Python (ichbook)"], check=True, capture_output=True)


def _ipc_kernel_manager():
    """A kernel manager that talks to its kernel over local sockets (IPC), not TCP on localhost: nothing else on
    the machine can connect, and the kernel has no "running over TCP without encryption" warning to print."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

    return IPCKernelManager


def run_chapter(chapter: Chapter, params: dict, root: Path) -> float:
    """Execute one chapter with papermill; return its seconds. The executed copy replaces the old one on success."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    chapter.executed.parent.mkdir(parents=True, exist_ok=True)
    scratch = store.data_root() / "book" / "runs" / f"{chapter.name}.ipynb"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # The kernel inherits this process's environment; a matplotlib backend forced there (importing streamlit
    # sets MPLBACKEND=Agg, for one) would keep every figure out of the chapter.
    forced = os.environ.pop("MPLBACKEND", None)
    try:
        papermill.execute_notebook(str(chapter.source), str(scratch), parameters=params, kernel_name=KERNEL,
                                   cwd=str(root / "notebooks"), progress_bar=False, log_output=False,
                                   kernel_manager_class=_ipc_kernel_manager())
    except PapermillExecutionError as exc:
        # Count cells as the source notebook has them (from 1), without the cell papermill injected.
        import nbformat

        ran = nbformat.read(scratch, as_version=4).cells[: exc.cell_index]
        number = exc.cell_index + 1 - sum("injected-parameters" in c.metadata.get("tags", []) for c in ran)
        line = failing_line(exc.source, exc.traceback)
        raise ChapterError(f"{chapter.source.relative_to(root)} failed in cell {number} ({line!r}): "
                           f"{exc.ename}: {exc.evalue}\npartial output: {scratch}") from None
    finally:
        if forced is not None:
            os.environ["MPLBACKEND"] = forced
    seconds = time.perf_counter() - start
    one_parameters_cell(scratch)
    scratch.replace(chapter.executed)
    return seconds


def one_parameters_cell(path: Path) -> None:
    """The page shows the parameters once: the chapter's defaults cell stays, papermill's injected cell (every
    value this build passed) is tagged ``remove-cell``, and a short note after it lists the values that differ
    from the defaults (:func:`parameters_note`)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    injected = next((i for i, t in enumerate(tags) if "injected-parameters" in t), None)
    defaults = next((c for c, t in zip(nb.cells, tags) if "parameters" in t), None)
    if injected is None or defaults is None:
        return
    cell = nb.cells[injected]
    if "remove-cell" not in tags[injected]:
        cell.metadata["tags"] = [*tags[injected], "remove-cell"]
    note = nbformat.v4.new_markdown_cell(parameters_note(defaults.source, cell.source))
    note.metadata["tags"] = ["parameters-note"]
    nb.cells.insert(injected + 1, note)
    nbformat.write(nb, path)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failing_line(source: str, traceback: list[str]) -> str:
    """The line of a cell that raised: IPython marks it ``----> N`` in the cell's own frame of the traceback;
    the cell's first line where the traceback does not say."""
    lines = source.strip("\n").splitlines() or [""]
    text = _ANSI.sub("", "\n".join(traceback or []))
    for frame in re.split(r"\n(?=Cell In\[|File )", text):
        if frame.startswith("Cell In["):
            marked = re.search(r"^-+> ?(\d+)", frame, re.M)
            if marked and 1 <= int(marked.group(1)) <= len(source.splitlines()):
                return source.splitlines()[int(marked.group(1)) - 1].strip()
            break
    return lines[0].strip()


def timings_table(timings: dict, order: list[str]) -> str:
    rows = ["| chapter | profile | seconds | finished (UTC) |", "| --- | --- | ---: | --- |"]
    for name in order:
        if name in timings:
            t = timings[name]
            rows.append(f"| {name} | {t['profile']} | {t['seconds']:.1f} | {t['finished']} |")
    total = sum(timings[n]["seconds"] for n in order if n in timings)
    rows.append(f"| **all chapters** | | **{total:.1f}** | |")
    return "\n".join(rows) + "\n"


def build_facts(timings: dict, order: list[str]) -> dict[str, str]:
    """What the abstract says about this build: its profile(s), the chapters' total time, the machine(s), when.
    Where chapters were re-run alone since the others, the total is the latest run of each and says so: a
    chapter that finds its models trained takes seconds, so that sum is not one build's time."""
    ran = [timings[n] for n in order if n in timings]
    seconds = sum(t["seconds"] for t in ran)
    profiles = sorted({t["profile"] for t in ran})
    machines = sorted({t.get("machine", "an unrecorded machine") for t in ran})
    time = f"{int(seconds // 60)} min {seconds % 60:02.0f} s"
    runs = [t.get("run") for t in ran]
    if len(set(runs)) > 1:
        alone = sum(r != max(runs, key=runs.count) for r in runs)
        time += (f" (the latest run of each chapter: {alone} of {len(ran)} were re-run on their own since, so this "
                 "is not one build's time; the timing appendix lists each)")
    return {"profile": " and ".join(f"`{p}`" for p in profiles) or "none yet", "time": time,
            "machine": "; ".join(machines) or "no machine yet",
            "finished": max((t["finished"] for t in ran), default="not yet")}


def last_profile() -> str | None:
    """The profile of the most recent chapter run recorded in ``data/book/timings.json`` (None: no build yet), so
    that ``--only`` re-runs a chapter of the book in hand, not of another profile."""
    path = store.data_root() / "book" / "timings.json"
    try:
        timings = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    runs = [t for t in timings.values() if isinstance(t, dict) and "profile" in t]
    return max(runs, key=lambda t: (t.get("run", ""), t.get("finished", "")))["profile"] if runs else None


def build(root: Path) -> None:
    """``jupyter-book build -W``: any warning fails the build."""
    exe = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(exe), "build", str(root), "-W", "--keep-going"], cwd=root, text=True,
                            capture_output=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-6000:] + result.stderr[-6000:])
        raise ChapterError(f"jupyter-book build failed (exit {result.returncode}); see the log above")


def run(profile: str = "cpu", only: list[str] | None = None, overrides: dict | None = None,
        root: Path | None = None, build_html: bool = True, log=print) -> dict:
    """Check parameters, prepare the data, execute the chapters in order, record timings, build the book."""
    root = root or project_root()
    profiles = load_profiles(root / "profiles.yml")
    if profile not in profiles:
        raise ParameterError(f"unknown profile {profile!r}; profiles.yml has: {', '.join(profiles)}")
    book = chapters(root)
    names = [c.name for c in book]
    for name in only or []:
        if name not in names:
            raise ParameterError(f"unknown chapter {name!r}; _toc.yml has: {', '.join(names)}")
    declared = {c.name: notebook_parameters(c.source) for c in book}
    params = resolve(declared, profile, profiles[profile], overrides or {})

    selected = [c for c in book if not only or c.name in only or not c.executed.exists()]
    ensure_kernel()
    settings = {**profiles[profile], **(overrides or {})}
    from .backend import has_gpu

    warning = cpu_warning(settings, has_gpu())
    if warning and any(c.name.startswith("03") for c in selected):  # only training pays it
        log(warning)
    if not settings.get("data_dir"):  # the phantom first, with its own progress bar, so chapters find it made
        log(f"cohort: {settings.get('studies')} studies, seed {settings.get('seed')}, {settings.get('matrix')} px")
        store.source("", settings["studies"], settings["seed"], settings["matrix"], settings.get("workers"))

    previous_root = os.environ.get("ICHBOOK_ROOT")
    os.environ["ICHBOOK_ROOT"] = str(root)  # the chapters' kernels inherit it: they write into this book only
    try:
        return _run_selected(root, profile, book, names, selected, params, build_html, log)
    finally:
        if previous_root is None:
            os.environ.pop("ICHBOOK_ROOT", None)
        else:
            os.environ["ICHBOOK_ROOT"] = previous_root


def _run_selected(root: Path, profile: str, book: list, names: list, selected: list, params: dict,
                  build_html: bool, log) -> dict:
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")  # which chapters ran together
    timing_file = store.data_root() / "book" / "timings.json"
    timings = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    for chapter in selected:
        log(f"running {chapter.name} ({profile})")
        seconds = run_chapter(chapter, params[chapter.name], root)
        timings[chapter.name] = dict(profile=profile, seconds=round(seconds, 1), machine=machine.machine_line(),
                                     finished=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"), run=started)
        timing_file.parent.mkdir(parents=True, exist_ok=True)
        timing_file.write_text(json.dumps(timings, indent=1))
        log(f"  {chapter.name}: {seconds:.1f} s")
    table = timings_table(timings, names)
    generated = root / "book" / "generated"
    generated.mkdir(parents=True, exist_ok=True)
    (generated / "timings.md").write_text(table)
    (generated / "profiles.md").write_text(profiles_table(root / "profiles.yml"))
    if (root / "book" / "abstract.md").exists():
        abstract.write(root, {c.name: c.executed for c in book}, build_facts(timings, names))
    if build_html:
        log("building the book (jupyter-book build -W)")
        build(root)
        log(f"book: {root / '_build' / 'html' / 'index.html'}")
    log("\n" + table)
    return timings
