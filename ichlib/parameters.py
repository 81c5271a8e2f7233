"""A chapter's parameters: declared in its ``parameters`` cell (literals only), set by a profile of
``profiles.yml`` and by the run's own values, checked before anything runs, and noted on the page where a build
changed them.

Every value is checked against the chapter's default (its type) and against ``VALUE_RULES`` (what a chapter can
run with), so a wrong name or value stops a run at once, naming it, not ten minutes into a chapter.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from . import runs
from .labels import LABELS, SUBTYPES


class ParameterError(ValueError):
    """A run parameter that no chapter declares, or of the wrong type."""


def notebook_parameters(path: Path) -> dict:
    """Names and defaults of a notebook's ``parameters`` cell, which must hold literal assignments only."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    return literal_assignments(cells[0].source, str(path))


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
    "mask_weight": (lambda v: 0 <= v < float("inf"), "a finite number, 0 (labels only) or more"),
    "score_from": (lambda v: v in runs.SCORES_FROM, " or ".join(runs.SCORES_FROM)),
    "lever_run": (lambda v: len(v.split("-")) == 3 and v.split("-")[0] in runs.ARCHS
                  and v.split("-")[1] in runs.PREPROCESSINGS and v.split("-")[2] in runs.VARIANTS,
                  "architecture-preprocessing-variant, e.g. densenet121-three_window-optimised"),
    "levers": (lambda v: all(_is_lever(x) for x in v), "a list of changes of run settings, e.g. [{}, {mask_weight: 0}]"),
    "lever_slices": (lambda v: v >= 0, "0 (every visible validation bleed) or more"),
    "archs": (lambda v: len(v) > 0 and set(v) <= set(runs.ARCHS), f"a non-empty list of {', '.join(runs.ARCHS)}"),
    "preprocessings": (lambda v: len(v) > 0 and set(v) <= set(runs.PREPROCESSINGS),
                       f"a non-empty list of {', '.join(runs.PREPROCESSINGS)}"),
    "variants": (lambda v: len(v) > 0 and set(v) <= set(runs.VARIANTS), f"a non-empty list of {', '.join(runs.VARIANTS)}"),
    "label": (lambda v: v in LABELS, f"one of {', '.join(LABELS)}"),
    "subtype": (lambda v: v in SUBTYPES, f"one of {', '.join(SUBTYPES)}"),
    "data_dir": (lambda v: not v or (Path(v) / "stage_2_train.csv").is_file() and (Path(v) / "stage_2_train").is_dir(),
                 "empty (the phantom) or a folder holding Kaggle's stage_2_train.csv and stage_2_train/"),
}


def _is_lever(lever) -> bool:
    from .levers import changes

    try:
        return isinstance(lever, dict) and changes(lever) is not None
    except ValueError:
        return False


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
        check_together(params)
        resolved[chapter] = params
    return resolved


def check_together(params: dict) -> None:
    """ParameterError for values that are each allowed but not together: a run taught by the masks on data
    that has none (real data: the `cpu` profile's recipe needs ``-p mask_weight 0 -p score_from head``), or
    `any` read from a mask head that never learnt from the masks."""
    if params.get("data_dir") and params.get("mask_weight", 0) > 0:
        raise ParameterError(f"parameter mask_weight {params['mask_weight']!r}: the runs would learn from bleed "
                             f"masks, and the data in {params['data_dir']} has none (real data); add "
                             "-p mask_weight 0 -p score_from head")
    if params.get("score_from") == "mask" and not (params.get("mask_weight", 0) > 0 or params.get("weights") == "masks"):
        raise ParameterError("parameter score_from 'mask': `any` would be read from a mask head that never learnt "
                             "from the masks; set mask_weight above 0 (phantom data), weights masks, or score_from head")


def literal_assignments(source: str, where: str = "parameters cell") -> dict:
    """A parameters cell's ``name = literal`` lines as {name: value}; anything else is a ParameterError naming
    ``where`` and the line (papermill's injected cell holds literals only too)."""
    values = {}
    try:
        body = ast.parse(source).body
    except SyntaxError as exc:  # a cell broken while editing it: named like any other bad line
        raise ParameterError(f"{where}, parameters cell line {exc.lineno}: not valid Python ({exc.msg})") from None
    for node in body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ParameterError(f"{where}, parameters cell line {node.lineno}: only 'name = literal' is allowed")
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise ParameterError(f"{where}, parameters cell line {node.lineno}: "
                                 f"{node.targets[0].id} is not a literal") from None
    return values


def parameters_note(defaults: str, used: str) -> str:
    """This build's parameters in a few lines of Markdown: only those whose value differs from the chapter's
    defaults (the parameters cell shown above the note), each with its default beside it."""
    before, after = literal_assignments(defaults), literal_assignments(used)
    changed = [(name, value) for name, value in after.items() if before.get(name, object()) != value]
    if not changed:
        return "**This build's parameters:** the chapter's defaults, as above."
    rows = [f"| `{name}` | {_shown(value)} | {_shown(before[name]) if name in before else '(new)'} |"
            for name, value in changed]
    return "\n".join(["**This build's parameters** (only those that differ from the defaults above):", "",
                      "| parameter | this build | default |", "| --- | --- | --- |", *rows])


def _shown(value) -> str:
    """A value as code; a long one as plain text, which the table can wrap (a code span never wraps)."""
    text = repr(value)
    return f"`{text}`" if len(text) <= 30 else text.replace("|", "\\|")


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
