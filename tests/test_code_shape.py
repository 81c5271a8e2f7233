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


# The layers of docs/architecture.md, lowest first: a module may import its own layer and those below, never one
# above. ``ichlib`` (the package) and ``ichlib.__main__`` (the command line) sit on top of them all.
LAYERS = {
    "foundation": {"labels", "paper", "backend", "machine", "parallel", "_heap", "metrics", "chromium", "clock"},
    "data": {"rsna", "preprocess", "cache", "store", "density", "level", "phantom", "masktargets"},
    "modelling": {"split", "batches", "devices", "models", "losses", "baselines", "levelprior", "gradcam",
                  "monitor", "runs", "train", "pretrain", "plan", "sequence", "pointers"},
    "evaluation": {"ensemble", "tables", "comparisons", "error_analysis", "localisation", "targets", "sanity",
                   "seeds", "describe", "levers"},
    "publishing": {"book", "parameters", "chapter", "abstract", "present", "figures", "reading"},
    "app": {"app"},
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_inside_the_package() -> dict[str, set[str]]:
    """Module (``rsna``, ``phantom.cohort``) -> the package modules it imports, at the top or inside a function."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    stem = base + (node.module.split(".") if node.module else [])
                else:
                    if not (node.module or "").startswith("ichlib"):
                        continue
                    stem = node.module.split(".")[1:]
                candidates = [".".join(stem + [alias.name]) for alias in node.names] + ([".".join(stem)] if stem else [])
            elif isinstance(node, ast.Import):
                candidates = [a.name.split(".", 1)[1] for a in node.names if a.name.startswith("ichlib.")]
            else:
                continue
            found |= {c for c in candidates if c in modules}
        graph[name] = found - {name}
    return graph


def _layer(module: str) -> int:
    if module in ("", "__main__"):
        return len(LAYERS)
    top = module.split(".")[0]
    for rank, members in enumerate(LAYERS.values()):
        if top in members:
            return rank
    raise AssertionError(f"ichlib.{module} is in no layer of tests/test_code_shape.LAYERS (nor docs/architecture.md)")


def test_every_import_points_down_the_layers():
    names = [*LAYERS, "the package and its command line"]
    upward = [f"{m or 'ichlib'} ({names[_layer(m)]}) imports {d} ({names[_layer(d)]})"
              for m, deps in imports_inside_the_package().items() for d in deps
              if _layer(d) > _layer(m) and not d.startswith(m + ".")]
    assert not upward, upward


def test_no_import_loop_inside_the_package():
    graph = imports_inside_the_package()
    # a package's __init__ re-exporting its own modules is no loop
    graph = {m: {d for d in deps if not (m and d.startswith(m + "."))} for m, deps in graph.items()}
    state, loops = {}, []

    def visit(module, path):
        state[module] = "open"
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == "open":
                loops.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, path + [dep])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not loops, loops
