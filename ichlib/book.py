"""The book runner: profiles, parameter checking, papermill execution in chapter order, timings, the build.

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

import ast
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

from . import abstract, machine, runs, store
from .labels import LABELS, SUBTYPES

KERNEL = "ichbook"
EXECUTED = "book/chapters"


class ParameterError(ValueError):
    """A run parameter that no chapter declares, or of the wrong type."""


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


def notebook_parameters(path: Path) -> dict:
    """Names and defaults of a notebook's ``parameters`` cell, which must hold literal assignments only."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    params = {}
    for node in ast.parse(cells[0].source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ParameterError(f"{path}, parameters cell line {node.lineno}: only 'name = literal' is allowed")
        try:
            params[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise ParameterError(f"{path}, parameters cell line {node.lineno}: "
                                 f"{node.targets[0].id} is not a literal") from None
    return params


def load_profiles(path: Path) -> dict[str, dict]:
    profiles = yaml.safe_load(path.read_text())
    return {name: {k: v for k, v in values.items() if k != "description"} for name, values in profiles.items()}


def _type_name(value) -> str:
    return "number" if isinstance(value, float) else type(value).__name__


def _fits(default, value) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if default is None:
        return True
    return isinstance(value, type(default))


# Values no chapter could run with, refused before anything runs: name -> (test, what is allowed).
VALUE_RULES = {
    "studies": (lambda v: v >= 1, "at least 1"),
    "matrix": (lambda v: v >= 32, "at least 32 (px)"),
    "image_size": (lambda v: v >= 32, "at least 32 (px): the backbones shrink their input 32 times"),
    "epochs": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "patience": (lambda v: v >= 1, "at least 1"),
    "workers": (lambda v: v >= 1, "at least 1"),
    "epoch_images": (lambda v: v >= 0, "0 (the whole training split) or more"),
    "learning_rate": (lambda v: v > 0, "above 0"),
    "n_boot": (lambda v: v >= 10, "at least 10"),
    "positive_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "bn_momentum": (lambda v: 0 < v < 1, "in (0, 1)"),
    "test_fraction": (lambda v: 0 < v < 0.9, "in (0, 0.9)"),
    "localisation_slices": (lambda v: v >= 0, "0 (every positive test slice) or more"),
    "series_train_studies": (lambda v: v >= 2, "at least 2"),
    "reseeds": (lambda v: v >= 0, "0 (no seed spread measured) or more"),
    "sanity_slices": (lambda v: v >= 1, "at least 1"),
    "negatives": (lambda v: v in runs.NEGATIVES, " or ".join(runs.NEGATIVES)),
    "weights": (lambda v: v in runs.WEIGHTS, " or ".join(runs.WEIGHTS)),
    "pretrain_images": (lambda v: v >= 0, "0 (no pretrained backbone) or more"),
    "archs": (lambda v: len(v) > 0 and set(v) <= set(runs.ARCHS), f"a non-empty list of {', '.join(runs.ARCHS)}"),
    "preprocessings": (lambda v: len(v) > 0 and set(v) <= set(runs.PREPROCESSINGS),
                       f"a non-empty list of {', '.join(runs.PREPROCESSINGS)}"),
    "variants": (lambda v: len(v) > 0 and set(v) <= set(runs.VARIANTS), f"a non-empty list of {', '.join(runs.VARIANTS)}"),
    "label": (lambda v: v in LABELS, f"one of {', '.join(LABELS)}"),
    "subtype": (lambda v: v in SUBTYPES, f"one of {', '.join(SUBTYPES)}"),
    "data_dir": (lambda v: not v or (Path(v) / "stage_2_train.csv").is_file() and (Path(v) / "stage_2_train").is_dir(),
                 "empty (the phantom) or a folder holding Kaggle's stage_2_train.csv and stage_2_train/"),
}


def check_value(name: str, value, origin: str) -> None:
    """ParameterError naming the parameter, its value and where it came from, for a value no chapter can use."""
    rule = VALUE_RULES.get(name)
    if rule is not None and value is not None and not rule[0](value):
        raise ParameterError(f"parameter {name} ({origin}): {value!r} is not allowed; expected {rule[1]}")


def resolve(declared: dict[str, dict], profile_name: str, profile: dict, overrides: dict) -> dict[str, dict]:
    """Each chapter's parameters: its defaults, overridden by the profile, overridden by the run's own values.

    Args:
        declared: chapter name -> its parameters cell (name -> default).
        profile_name: e.g. ``"cpu"``.
        profile: that profile's values.
        overrides: ``-p`` and ``--params`` values.

    Raises:
        ParameterError: naming every unknown parameter, or the first value of the wrong type.
    """
    if "profile" in overrides:
        raise ParameterError("profile is chosen with --profile, not as a parameter")
    known = {name for params in declared.values() for name in params} - {"profile"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParameterError(f"unknown parameter(s) {', '.join(unknown)}; the chapters declare: {', '.join(sorted(known))}")
    resolved = {}
    for chapter, defaults in declared.items():
        params = {}
        for name, default in defaults.items():
            value, origin = default, "default"
            if name == "profile":
                value, origin = profile_name, "profile"
            elif name in overrides:
                value, origin = overrides[name], "-p"
            elif name in profile:
                value, origin = profile[name], f"profile {profile_name}"
            if not _fits(default, value):
                raise ParameterError(f"parameter {name} ({origin}): expected {_type_name(default)}, "
                                     f"got {value!r} ({_type_name(value)}) in chapter {chapter}")
            if name == "data_dir" and value:  # relative to where the book is run from, not the chapters' folder
                value = str(Path(value).expanduser().resolve())
            check_value(name, value, origin)
            params[name] = value
        resolved[chapter] = params
    return resolved


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


def literal_assignments(source: str) -> dict:
    """``name = literal`` lines of a parameters cell as {name: value} (what is not a literal is left out)."""
    import ast

    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def parameters_note(defaults: str, used: str) -> str:
    """This build's parameters in a few lines of Markdown: only those whose value differs from the chapter's
    defaults (the parameters cell shown above the note), each with its default beside it."""
    before, after = literal_assignments(defaults), literal_assignments(used)
    changed = [(name, value) for name, value in after.items() if before.get(name, object()) != value]
    if not changed:
        return "**This build's parameters:** the chapter's defaults, as above."
    rows = [f"| `{name}` | `{value!r}` | {f'`{before[name]!r}`' if name in before else '(new)'} |"
            for name, value in changed]
    return "\n".join(["**This build's parameters** (only those that differ from the defaults above):", "",
                      "| parameter | this build | default |", "| --- | --- | --- |", *rows])


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


def profiles_table(path: Path) -> str:
    """The landing page's table of profiles, from their descriptions in profiles.yml (so it cannot go stale)."""
    profiles = yaml.safe_load(path.read_text())
    rows = ["| profile | what it runs |", "| --- | --- |"]
    rows += [f"| `{name}` | {values.get('description', '')} |" for name, values in profiles.items()]
    return "\n".join(rows) + "\n"


def cpu_warning(settings: dict, gpu: bool) -> str | None:
    """A line for a run that will take hours on this machine: images above 128 px without a GPU (the `gpu`
    profile's 512 px on a CPU), with the cost of one training image against the `cpu` profile's 80 px."""
    size = settings.get("image_size") or 0
    if gpu or size <= 128:
        return None
    epochs = settings.get("epochs", 1)
    return (f"warning: no GPU here, and images of {size} px cost about {(size / 80) ** 2:.0f}x the `cpu` profile's "
            f"80 px in every step; with up to {epochs} epoch(s) over "
            f"{'the whole training split' if not settings.get('epoch_images') else str(settings['epoch_images']) + ' images'}"
            " per model, expect hours to days on a CPU (the `cpu` profile is sized for one).")


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
