"""The chapter sources follow the house conventions: literal parameters with a profile, the standard sections,
explicit imports, logic in ichlib, and no committed outputs."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from ichlib.parameters import notebook_parameters
from ichlib.runs import RUN_SETTINGS

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = nbformat.read(path, as_version=4)
    params = notebook_parameters(path)
    assert "profile" in params
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("## Overview", "## Prerequisites", "## Summary", "## Exercises"):
        assert heading in text, f"{path.name} lacks {heading}"
    assert "Time to run" in text
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert not cell.outputs and cell.execution_count is None, f"{path.name}: outputs are committed"
        tree = ast.parse(cell.source)
        assert not any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in ast.walk(tree))
        # narrative plus calls: no function or class is defined in a chapter
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in ast.walk(tree)), path.name
        assert "!" not in cell.source.split("\n")[0][:1], f"{path.name}: never shell out from a notebook"


# the data, the plan, and every run setting (ichlib.runs.RUN_SETTINGS: what settings_in passes on to the runs)
TRAINING = ("data_dir", "studies", "matrix", "workers", "archs", "preprocessings", "variants", *RUN_SETTINGS)


def test_chapters_that_read_the_trained_runs_declare_the_same_training_parameters():
    """Chapters 03-06 and 08 find the runs by their settings: one default drifting would make a chapter retrain."""
    readers = [p for p in NOTEBOOKS if p.stem[:2] in ("03", "04", "05", "06", "08")]
    assert len(readers) == 5
    first = notebook_parameters(readers[0])
    for path in readers:
        params = notebook_parameters(path)
        assert set(TRAINING) <= set(params), f"{path.name} lacks {set(TRAINING) - set(params)}"
        assert {k: params[k] for k in TRAINING} == {k: first[k] for k in TRAINING}, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_ichlib_name_a_chapter_calls_exists(path):
    """``module.name`` in a chapter, for each ``ichlib`` module it imports, names something that module has: a
    function moved or renamed in the package fails here in seconds, not half-way through a book build."""
    import importlib

    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    tree = ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))
    modules = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ichlib"):
            for alias in node.names:
                try:
                    modules[alias.asname or alias.name] = importlib.import_module(f"{node.module}.{alias.name}")
                except ModuleNotFoundError:  # a function or constant, not a module
                    continue
    missing = sorted({f"{node.value.id}.{node.attr}" for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                      and node.value.id in modules and not hasattr(modules[node.value.id], node.attr)})
    assert modules and not missing, missing
