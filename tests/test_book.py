"""ichlib.book: parameters checked before anything runs, failures named, and the whole book on the smoke profile."""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from ichlib.book import ChapterError, build_facts, chapters, project_root, run, timings_table
from ichlib.parameters import ParameterError

ROOT = Path(__file__).resolve().parents[1]


def write_notebook(path: Path, parameters: str, body: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in body]
    nb.metadata["kernelspec"] = {"name": "ichbook", "display_name": "Python (ichbook)", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def mini_book(tmp_path, monkeypatch):
    """A two-chapter book in a temporary project, its data under tmp_path/data."""
    monkeypatch.setenv("ICHBOOK_DATA", str(tmp_path / "data"))
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": "book/intro",
        "chapters": [{"file": "book/chapters/01_ok"}, {"file": "book/chapters/02_fails"}]}))
    (tmp_path / "profiles.yml").write_text(yaml.safe_dump({
        "tiny": {"description": "test", "data_dir": "", "studies": 1, "seed": 0, "matrix": 32, "workers": 1}}))
    params = 'profile = "cpu"\ndata_dir = ""\nstudies = 40\nseed = 0\nmatrix = 512\nworkers = 2\nrate = 0.5\n'
    write_notebook(tmp_path / "notebooks" / "01_ok.ipynb", params, ["print(studies * 2, rate)"])
    write_notebook(tmp_path / "notebooks" / "02_fails.ipynb", 'profile = "cpu"\nstudies = 40\n',
                   ["x = 1", "raise RuntimeError('planted failure')", "print('never')"])
    return tmp_path


def test_chapters_follow_the_toc(mini_book):
    assert [c.name for c in chapters(mini_book)] == ["01_ok", "02_fails"]
    assert chapters(mini_book)[0].executed == mini_book / "book" / "chapters" / "01_ok.ipynb"


def test_real_toc_lists_existing_notebooks():
    found = chapters(ROOT)
    assert found and all(c.source.exists() for c in found)
    assert project_root() == ROOT


def test_failing_chapter_stops_the_run_naming_notebook_and_cell(mini_book):
    with pytest.raises(ChapterError) as err:
        run("tiny", root=mini_book, build_html=False, log=lambda *a: None)
    message = str(err.value)
    assert "notebooks/02_fails.ipynb" in message and "cell 3" in message and "planted failure" in message
    # the chapter before it ran, with the profile's values, and its time was kept
    executed = nbformat.read(mini_book / "book" / "chapters" / "01_ok.ipynb", as_version=4)
    assert "2 0.5" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert not (mini_book / "book" / "chapters" / "02_fails.ipynb").exists()
    timings = json.loads((mini_book / "data" / "book" / "timings.json").read_text())
    assert set(timings) == {"01_ok"}


def test_a_failing_cell_is_named_by_its_failing_line(mini_book):
    """A cell that fails on its third line is reported by that line, not by its first."""
    write_notebook(mini_book / "notebooks" / "02_fails.ipynb", 'profile = "cpu"\nstudies = 40\n',
                   ["x = 1", "y = 2\nz = y * 3\nundefined_name + z\nprint('never')"])
    with pytest.raises(ChapterError) as err:
        run("tiny", root=mini_book, build_html=False, log=lambda *a: None)
    assert "cell 3 ('undefined_name + z')" in str(err.value) and "NameError" in str(err.value)


def test_only_runs_one_chapter_and_checks_before_running(mini_book):
    with pytest.raises(ParameterError, match="unknown chapter '03_nope'"):
        run("tiny", only=["03_nope"], root=mini_book, build_html=False, log=lambda *a: None)
    with pytest.raises(ParameterError, match="unknown profile 'fast'"):
        run("fast", root=mini_book, build_html=False, log=lambda *a: None)
    # 02 has no executed copy, so it would run too: give it one, then --only 01 leaves it alone
    (mini_book / "book" / "chapters").mkdir(parents=True)
    shutil.copy(mini_book / "notebooks" / "02_fails.ipynb", mini_book / "book" / "chapters" / "02_fails.ipynb")
    timings = run("tiny", only=["01_ok"], overrides={"rate": 2.0}, root=mini_book, build_html=False,
                  log=lambda *a: None)
    assert set(timings) == {"01_ok"}
    assert "| 01_ok | tiny |" in (mini_book / "book" / "generated" / "timings.md").read_text()
    # the page shows the parameters once: the defaults cell, then a note of the values that differ from them
    # (papermill's injected cell, which repeats every value, is left off the page)
    cells = nbformat.read(mini_book / "book" / "chapters" / "01_ok.ipynb", as_version=4).cells
    shown = [c for c in cells if "remove-cell" not in c.metadata.get("tags", []) and "rate =" in c.source]
    assert len(shown) == 1 and "parameters" in shown[0].metadata["tags"]
    injected = next(i for i, c in enumerate(cells) if "injected-parameters" in c.metadata.get("tags", []))
    assert "remove-cell" in cells[injected].metadata["tags"]
    note = cells[injected + 1]
    assert note.cell_type == "markdown" and "| `rate` | `2.0` | `0.5` |" in note.source


def test_a_chapter_runs_quietly_its_kernel_over_local_sockets(mini_book, capfd):
    """The console shows the runner's lines, not the kernel's TCP warning (the kernel talks over IPC)."""
    lines = []
    (mini_book / "book" / "chapters").mkdir(parents=True)  # 02 counts as run: only 01 runs
    shutil.copy(mini_book / "notebooks" / "02_fails.ipynb", mini_book / "book" / "chapters" / "02_fails.ipynb")
    run("tiny", only=["01_ok"], root=mini_book, build_html=False, log=lines.append)
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err and "WARNING" not in err
    assert any("01_ok" in line for line in lines)


def test_cli_rejects_a_bad_parameter_before_running():
    result = subprocess.run([sys.executable, "-m", "ichlib", "book", "--profile", "smoke", "-p", "imge_size", "96"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "imge_size" in result.stderr and "running" not in result.stdout


@pytest.mark.parametrize("args, needle", [
    (["-p", "image_size", "[64"], "-p image_size '[64': not a value YAML can read"),
    (["-p", "image_size", "0"], "parameter image_size (-p): 0 is not allowed; expected at least 32"),
    (["-p", "data_dir", "/nowhere/rsna"], "parameter data_dir (-p): '/nowhere/rsna' is not allowed"),
    (["-p", "studies", "-1"], "parameter studies (-p): -1 is not allowed"),
    (["-p", "reseeds", "-1"], "parameter reseeds (-p): -1 is not allowed; expected 0 (no seed spread measured)"),
    (["-p", "sanity_slices", "0"], "parameter sanity_slices (-p): 0 is not allowed; expected at least 1"),
    (["-p", "mask_weight", "0"], "parameter score_from 'mask': `any` would be read from a mask head that never"),
    (["-p", "mask_weight", "-1"], "parameter mask_weight (-p): -1 is not allowed"),
    (["--params", "/nowhere/params.yaml"], "--params /nowhere/params.yaml: cannot be read"),
])
def test_cli_refuses_bad_values_in_one_line_before_anything_runs(args, needle, tmp_path):
    env = {**os.environ, "ICHBOOK_DATA": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "ichlib", "book", "--profile", "smoke", *args],
                            capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.strip()[7:]}"]  # one line
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*"))  # nothing made


def test_cli_refuses_malformed_yaml_in_a_params_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("image_size: [64\n")
    result = subprocess.run([sys.executable, "-m", "ichlib", "book", "--params", str(bad)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"--params {bad}: not valid YAML" in result.stderr


def test_build_facts_for_the_abstract():
    timings = {"a": {"profile": "cpu", "seconds": 70.4, "finished": "2026-01-01 10:00", "machine": "2-core X"},
               "b": {"profile": "cpu", "seconds": 1560.0, "finished": "2026-01-01 10:27", "machine": "2-core X"}}
    facts = build_facts(timings, ["a", "b", "c"])
    assert facts == {"profile": "`cpu`", "time": "27 min 10 s", "machine": "2-core X", "finished": "2026-01-01 10:27"}
    assert build_facts({}, ["a"])["profile"] == "none yet"
    together = {k: {**v, "run": "r1"} for k, v in timings.items()}
    assert build_facts(together, ["a", "b"])["time"] == "27 min 10 s"
    alone = {"a": {**together["a"], "run": "r2"}, "b": together["b"], "c": {**together["b"], "run": "r1"}}
    assert "1 of 3 were re-run on their own" in build_facts(alone, ["a", "b", "c"])["time"]


def test_timings_table_totals():
    table = timings_table({"a": {"profile": "cpu", "seconds": 1.5, "finished": "x"},
                           "b": {"profile": "cpu", "seconds": 2.0, "finished": "y"}}, ["a", "b", "c"])
    assert "| a | cpu | 1.5 | x |" in table and "**3.5**" in table


def book_copy(target: Path) -> Path:
    """The book's sources (configuration, notebooks, pages, profiles) copied to ``target``: a book built there
    writes nothing into this checkout, whose built book and data are the user's."""
    for name in ("_config.yml", "_toc.yml", "profiles.yml"):
        shutil.copy2(ROOT / name, target / name)
    shutil.copytree(ROOT / "notebooks", target / "notebooks")
    shutil.copytree(ROOT / "_static", target / "_static")
    shutil.copytree(ROOT / "book", target / "book", ignore=shutil.ignore_patterns("chapters", "generated"))
    return target


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory):
    """The whole book on the smoke profile, built once in a temporary copy with its own data folder; returns
    (book root, data root, timings)."""
    root = book_copy(tmp_path_factory.mktemp("book"))
    data = tmp_path_factory.mktemp("data")
    before = {path: path.stat().st_mtime_ns for path in _users_book()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ICHBOOK_DATA", str(data))
        timings = run("smoke", root=root, log=lambda *a: None)
    after = {path: path.stat().st_mtime_ns for path in _users_book()}
    return root, data, timings, before, after


def _users_book() -> list[Path]:
    """What a user's own build leaves in the checkout: the HTML, the executed chapters, the generated pages."""
    return sorted(p for folder in ("_build/html", "book/chapters", "book/generated") if (ROOT / folder).exists()
                  for p in (ROOT / folder).rglob("*") if p.is_file())


@pytest.mark.slow
def test_whole_book_on_the_smoke_profile_builds_without_warnings(smoke_book):
    """Every chapter runs on the smoke profile and jupyter-book builds the HTML with -W, in a copy of the book:
    the user's own built book in this checkout is left as it was."""
    root, data, timings, before, after = smoke_book
    assert set(timings) == {c.name for c in chapters(root)}
    assert before == after, "building the test's book touched the checkout's built book"
    assert (data / "book" / "timings.json").exists()
    html = root / "_build" / "html"
    assert (html / "index.html").exists()
    for chapter in chapters(root):
        page = (html / "book" / "chapters" / f"{chapter.name}.html").read_text()
        assert "<img" in page, f"{chapter.name} has no figure"
        assert "Traceback" not in page
        for path in (ROOT, root, data):
            assert str(path) not in page, f"{chapter.name} shows this machine's paths"
        assert "Warning:" not in page, f"{chapter.name} shows a warning"
    intro = (html / "book" / "intro.html").read_text()
    assert "Abstract." in intro and "not built yet" not in intro and "pasted-text" in intro  # glued values


@pytest.mark.slow
def test_the_built_smoke_book_reads_like_a_paper_in_chromium(smoke_book):
    """On the smoke book, at 1,300 px: the abstract's values are there, every figure of chapters 1-7 has a
    number and a caption, no table of chapters 3, 4 and 6 and no code cell of chapters 1-7 scrolls sideways."""
    from ichlib import chromium, reading

    root = smoke_book[0]
    html = root / "_build" / "html"
    if chromium.chromium() is None:
        pytest.skip("needs Chromium")
    names = [c.name for c in chapters(root)]
    assert reading.problems(html, names[:7], ["03_training", "04_ensembles", "06_results"]) == []
    seen = reading.measure(html, ["book/chapters/03_training.html"])["book/chapters/03_training.html"]
    assert any(t["caption"].startswith("Table 3.") for t in seen["tables"])  # numbered within the chapter
    assert any(f["caption"].startswith("Fig. 3.") for f in seen["figures"])


def test_figures_stay_inline_when_the_environment_forces_a_backend(tmp_path, monkeypatch):
    """Importing streamlit sets MPLBACKEND=Agg in the process; chapters run from it must still show figures."""
    from ichlib.book import Chapter, run_chapter

    monkeypatch.setenv("ICHBOOK_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    source = write_notebook(tmp_path / "notebooks" / "01_fig.ipynb", 'profile = "cpu"\n',
                            ["import matplotlib.pyplot as plt\nplt.plot([0, 1]);"])
    chapter = Chapter("01_fig", source, tmp_path / "book" / "chapters" / "01_fig.ipynb")
    run_chapter(chapter, {"profile": "cpu"}, tmp_path)
    outputs = [o for c in nbformat.read(chapter.executed, as_version=4).cells for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert os.environ["MPLBACKEND"] == "Agg"  # given back afterwards


def test_reading_a_folder_without_a_book_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ichlib.reading", str(tmp_path / "nothing here")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "holds no built book" in result.stderr and "Traceback" not in result.stderr


def test_only_reruns_a_chapter_of_the_last_build_and_says_which_profile(tmp_path, monkeypatch):
    """After `make book PROFILE=smoke`, `--only CHAPTER` without --profile works on the smoke book, not on the
    cpu profile's 760-study cohort; the command says which profile it took."""
    from ichlib.book import last_profile

    monkeypatch.setenv("ICHBOOK_DATA", str(tmp_path))
    assert last_profile() is None
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "timings.json").write_text(json.dumps({
        "01_preprocessing": {"profile": "cpu", "run": "2026-01-01 10:00:00", "finished": "2026-01-01 10:01"},
        "02_architectures": {"profile": "smoke", "run": "2026-02-01 10:00:00", "finished": "2026-02-01 10:01"}}))
    assert last_profile() == "smoke"
    env = {**os.environ, "ICHBOOK_DATA": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "ichlib", "book", "--only", "01_preprocessing", "-p", "imge_size",
                             "96"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert "profile: smoke (the last build's" in result.stdout
    assert result.returncode == 2 and "imge_size" in result.stderr  # checked before anything runs
    # `--params FILE` without --only (the README's next line) stays on the last build's profile too
    (tmp_path / "settings.yaml").write_text("imge_size: 96\n")
    result = subprocess.run([sys.executable, "-m", "ichlib", "book", "--params", str(tmp_path / "settings.yaml")],
                            capture_output=True, text=True, cwd=ROOT, env=env)
    assert "profile: smoke (the last build's" in result.stdout and result.returncode == 2
    (tmp_path / "book" / "timings.json").write_text("{broken")
    assert last_profile() is None


def kaggle_folder(target: Path, studies: int = 12, seed: int = 3) -> Path:
    """A folder in Kaggle's layout and nothing more: a phantom cohort without its masks and manifest, as real
    data arrives (labels CSV and DICOM files only)."""
    from ichlib.phantom import make_cohort

    make_cohort(target, studies, seed=seed, matrix=64, workers=2, progress=False)
    for extra in ("masks", ".progress"):
        shutil.rmtree(target / extra, ignore_errors=True)
    (target / "manifest.json").unlink()
    return target


# The `gpu` profile in miniature on a CPU: tiny images, one backbone, one input, one variant, from scratch.
REAL_MINIATURE = {"image_size": 64, "archs": ["resnet50"], "preprocessings": ["three_window"],
                  "variants": ["baseline"], "epochs": 1, "batch_size": 16, "mixed_precision": False,
                  "weights": "none", "workers": 2, "n_boot": 100, "reseeds": 0, "sanity_slices": 4}
# Words that would call this data a phantom: captions' "(phantom)", claims about "the phantom's" split or models.
# (Notes about the default build and the project's targets on the phantom are true on any build.)
PHANTOM_CLAIMS = ("(phantom)", "phantom's test split", "trained on the phantom", "phantom results, not accuracy",
                  "These are phantom results")


@pytest.mark.slow
def test_the_real_data_path_builds_without_masks_and_never_calls_itself_phantom(tmp_path_factory):
    """Kaggle's layout without masks, the gpu profile in miniature: the whole book builds with -W, reads
    cleanly, and no page says phantom where it means this data (the default build's note aside)."""
    from ichlib import reading

    root = book_copy(tmp_path_factory.mktemp("realbook"))
    data = tmp_path_factory.mktemp("realdata")
    kaggle = kaggle_folder(tmp_path_factory.mktemp("download") / "rsna")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ICHBOOK_DATA", str(data))
        timings = run("gpu", overrides={"data_dir": str(kaggle), **REAL_MINIATURE}, root=root, log=lambda *a: None)
    assert set(timings) == {c.name for c in chapters(root)}
    html = root / "_build" / "html"
    for page in [html / "book" / "intro.html", *(html / "book" / "chapters").glob("*.html")]:
        text = re.sub(r"<pre.*?</pre>", " ", page.read_text(), flags=re.S)  # what the page says, not its code
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", text)).replace("’", "'")
        found = [claim for claim in PHANTOM_CLAIMS if claim in text]
        assert not found, f"{page.name} calls real data phantom: {found}"
    intro = (html / "book" / "intro.html").read_text()
    assert "results on real data" in intro
    from ichlib import chromium

    if chromium.chromium() is not None:
        names = [c.name for c in chapters(root)]
        assert reading.problems(html, names[:7], []) == []


@pytest.mark.parametrize("key, value, expected", [("archs", "[resnet5]", "a non-empty list of efficientnetb2"),
                                                  ("preprocessings", "[]", "a non-empty list of three_window"),
                                                  ("variants", "[best]", "a non-empty list of baseline"),
                                                  ("label", "bleed", "one of any, epidural"),
                                                  ("subtype", "any", "one of epidural"),
                                                  ("negatives", "hard", "random or level_matched")])
def test_list_and_name_parameters_are_checked_before_anything_runs(key, value, expected):
    result = subprocess.run([sys.executable, "-m", "ichlib", "book", "--profile", "smoke", "-p", key, value],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and f"parameter {key}" in result.stderr and expected in result.stderr
