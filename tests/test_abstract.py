"""ichlib.abstract: the landing page's numbers come from the chapters' glue, never silently empty; and the
abstract's and the summaries' glue names stay in step with what the chapters glue."""

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from ichlib.abstract import NOT_BUILT, AbstractError, glued_keys, needed, render
from ichlib.book import chapters

ROOT = Path(__file__).resolve().parents[1]


def executed(path: Path, **glued) -> Path:
    """An executed notebook whose one cell glued ``glued`` as myst-nb does."""
    outputs = [new_output("display_data", data={"application/papermill.record/text/plain": value},
                          metadata={"scrapbook": {"name": key, "mime_prefix": "application/papermill.record/"}})
               for key, value in glued.items()]
    cell = new_code_cell("glue(...)")
    cell.outputs = outputs
    nbformat.write(new_notebook(cells=[cell]), path)
    return path


def test_glued_keys_are_read_from_the_outputs(tmp_path):
    assert glued_keys(executed(tmp_path / "a.ipynb", auc="0.87", name="D121")) == {"auc", "name"}


def test_tokens_become_glue_roles_build_facts_and_not_built_yet(tmp_path):
    template = ("<!-- a [[comment::x]] is dropped -->\nBest [[03_training::auc]] on [[build::machine]]; "
                "series [[08_series::gain]].")
    nbs = {"03_training": executed(tmp_path / "03.ipynb", auc="0.87"), "08_series": tmp_path / "missing.ipynb"}
    out = render(template, nbs, {"machine": "2-core test CPU"})
    assert out == (f"Best {{glue:text}}`chapters/03_training.ipynb::auc:s` on 2-core test CPU; series {NOT_BUILT}.")


def test_a_chapter_that_ran_without_the_key_stops_the_build(tmp_path):
    nbs = {"03_training": executed(tmp_path / "03.ipynb", other="1")}
    with pytest.raises(AbstractError, match="03_training has run but glues no 'auc'.*--only 03_training"):
        render("[[03_training::auc]]", nbs, {})


def test_unknown_chapters_and_build_facts_are_named(tmp_path):
    with pytest.raises(AbstractError, match="99_nope"):
        render("[[99_nope::x]]", {}, {})
    with pytest.raises(AbstractError, match="'speed'.*machine"):
        render("[[build::speed]]", {}, {"machine": "x"})


def glued_in_source(notebook: Path) -> set[str]:
    """Names a chapter's source glues: ``present.glue("name", ...)`` calls."""
    text = "".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
    names = set(re.findall(r'present\.glue\(\s*"(\w+)"', text))
    # present.data_kind glues what it returns; chapter.trained calls it for the chapters that start there
    return names | ({"data_kind"} if "present.data_kind(" in text or "chapter.trained(" in text else set())


def test_the_abstract_only_names_what_the_chapters_glue():
    book = {c.name: c.source for c in chapters(ROOT)}
    for source, keys in needed((ROOT / "book" / "abstract.md").read_text()).items():
        if source == "build":
            assert keys <= {"profile", "time", "machine", "finished"}
            continue
        assert source in book, f"abstract.md names {source}, which is not a chapter"
        assert keys <= glued_in_source(book[source]), f"{source} does not glue {keys - glued_in_source(book[source])}"


def test_every_summary_names_only_what_its_chapter_glues():
    for chapter in chapters(ROOT):
        nb = nbformat.read(chapter.source, as_version=4)
        prose = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
        used = set(re.findall(r"\{glue:text\}`(\w+)`", prose))
        assert used <= glued_in_source(chapter.source), f"{chapter.name} pastes {used - glued_in_source(chapter.source)}"
        assert "## Summary" in prose


def test_every_chapter_summary_states_a_computed_number():
    for chapter in chapters(ROOT):
        nb = nbformat.read(chapter.source, as_version=4)
        summary = next(c.source for c in nb.cells if "## Summary" in c.source)
        summary = summary[summary.index("## Summary"):summary.index("## Exercises")]
        assert "{glue:text}" in summary, f"{chapter.name}'s summary states no number of its own"


@pytest.mark.parametrize("typo", ["[[03_training::]]", "[[03 training::auc]]", "[[03_training:auc]]"])
def test_a_token_that_cannot_be_read_stops_the_build(tmp_path, typo):
    nbs = {"03_training": executed(tmp_path / "03.ipynb", auc="0.87")}
    with pytest.raises(AbstractError, match="not a"):
        render(f"Best {typo}.", nbs, {})


def test_empty_and_repeated_tokens(tmp_path):
    nbs = {"03_training": executed(tmp_path / "03.ipynb", auc="0.87")}
    assert render("", nbs, {}) == ""
    assert render("[[03_training::auc]] and [[03_training::auc]]", nbs, {}).count("::auc:s`") == 2
