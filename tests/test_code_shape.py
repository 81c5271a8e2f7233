"""The package's shape, as the developers' guide asks: short functions, one owner per concept."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ichlib"
MAX_LINES = 60


def test_no_function_in_the_package_runs_past_sixty_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these where their parts have names: " + "; ".join(long)


def test_run_folder_files_are_named_only_in_ichlib_runs():
    """The prediction CSVs and done.json belong to ichlib.runs; other modules go through it."""
    owners = {'"predictions_': set(), '"done.json"': set()}  # as string literals in code, not in docstrings
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        for needle, found in owners.items():
            if needle in text:
                found.add(path.name)
    assert owners == {'"predictions_': {"runs.py"}, '"done.json"': {"runs.py"}}, owners


def test_nothing_imports_the_command_line_module():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").endswith("__main__"), f"{path} imports {node.module}"


def test_no_file_points_outside_the_repository():
    """A clone has no notes folder beside it: nothing in the repository may send a reader there."""
    import subprocess

    pattern = "../" + "shared"  # written so that this file does not match itself
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    pointing = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".ipynb", ".yml", ".yaml", ".toml", ".bib", ".txt", ".cfg"} or \
                name in ("Makefile", ".ci/run"):
            text = path.read_text(errors="ignore")
            if pattern in text or ("shared" + "/design") in text or ("shared" + "/paper") in text:
                pointing.append(name)
    assert not pointing, f"these point outside the repository: {pointing}"


def test_scoring_and_the_history_name_the_labels_without_the_dicom_reader():
    """``ichlib.labels`` stands alone: importing the metrics or the app's history does not load pydicom."""
    import subprocess
    import sys

    code = "import sys, ichlib.metrics, ichlib.app.history; print('pydicom' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "False"


def test_air_is_one_number():
    from ichlib import preprocess, rsna

    assert rsna.AIR_HU == preprocess.AIR_HU == -1000.0
