"""How the chapters put numbers on the page: numbered, captioned tables that fit the column, short run labels,
values rounded to what their intervals justify, and values glued for the abstract and the summaries.

A chapter shows ``present.table(frame, "tbl-name", "Caption.")``: in Jupyter it is an HTML table with its
caption; in the book (myst-nb renders the Markdown form first, see ``_config.yml``) it is a MyST ``table``
directive, numbered by Sphinx and referenced from the prose as ``{numref}`tbl-name```. The directives are
colon fences: a caption may hold inline code, which a backtick fence's first line cannot.
"""

from __future__ import annotations

import base64
import math
import os
import re
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

ARCH_SHORT = {"efficientnetb2": "EB2", "resnet50": "R50", "densenet121": "D121"}
PREPROCESSING_SHORT = {"three_window": "3w", "adjacent": "adj"}
INPUT_NAMES = {"three_window": "three-window", "adjacent": "adjacent-slice"}  # the two inputs, in prose
VARIANT_SHORT = {"baseline": "base", "optimised": "opt"}
SHORT = {**ARCH_SHORT, **PREPROCESSING_SHORT, **VARIANT_SHORT}
LEGEND = ("Run labels: EB2 EfficientNetB2, R50 ResNet50, D121 DenseNet121; 3w three windows of one slice, adj "
          "adjacent slices; base baseline, opt optimised (`any` weighted 5 in the loss, flips).")
LABEL_SHORT = {"epidural": "EDH", "intraparenchymal": "IPH", "intraventricular": "IVH", "subarachnoid": "SAH",
               "subdural": "SDH"}
LABEL_LEGEND = "Labels: EDH epidural, IPH intraparenchymal, IVH intraventricular, SAH subarachnoid, SDH subdural."
MISSING = "–"


def short_label(name: str) -> str:
    """``densenet121-three_window-optimised`` -> ``D121·3w·opt``; ``a + b`` lists each, ``name (note)`` shortens
    the name and keeps the note; other names unchanged."""
    if " + " in name:
        return " + ".join(short_label(part) for part in name.split(" + "))
    if " (" in name:  # a run's name with a note: "densenet121-adjacent-baseline (its mask)"
        head, rest = name.split(" (", 1)
        return f"{short_label(head)} ({short_label(rest.removesuffix(')'))})" if rest.endswith(")") else name
    parts = name.split("-")
    if len(parts) > 1 and all(p in SHORT for p in parts):
        return "·".join(SHORT[p] for p in parts)
    return re.sub(r"\(([^)]*)\)", lambda m: f"({short_label(m.group(1))})", name)


def digits_for(width: float) -> int:
    """Decimals worth showing for a value whose 95 % interval is ``width`` wide: the fewest that put at least
    three steps of the last digit across the interval (0.06 -> 2, 0.16 -> 2, 0.006 -> 3, 0.5 -> 1)."""
    if not np.isfinite(width) or width <= 0:
        return 3
    return max(1, math.ceil(math.log10(3 / width)))


def with_interval(value: float, low: float, high: float, digits: int | None = None, prefix: str = "95 % CI ") -> str:
    """``0.87 (95 % CI 0.84-0.90)``, rounded to what the interval's width justifies unless ``digits`` is given;
    ``prefix=""`` where a column header already says what the parentheses hold."""
    if not np.isfinite(value):
        return "undefined"
    d = digits_for(high - low) if digits is None else digits
    return f"{value:.{d}f} ({prefix}{low:.{d}f}–{high:.{d}f})"


def _cell(value, digits: int) -> str:
    if isinstance(value, (bool, np.bool_)):
        text = "yes" if value else "no"
    elif isinstance(value, (int, np.integer)):
        text = f"{value:,}"
    elif isinstance(value, (float, np.floating)):
        text = MISSING if not np.isfinite(value) else (f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}")
    elif value is None:
        text = MISSING
    else:
        text = str(value)
    return text.replace("\n", " ")


class Table:
    """A table with a number (``name``) and a caption; Markdown for the book, HTML for Jupyter."""

    def __init__(self, frame: pd.DataFrame, name: str, caption: str, digits: int = 3, index: bool = True,
                 column_digits: dict | None = None):
        if not re.fullmatch(r"tbl-[a-z0-9-]+", name):
            raise ValueError(f"table name {name!r}: use tbl- followed by lower-case letters, digits and dashes")
        self.frame, self.name, self.caption, self.digits, self.index = frame, name, caption, digits, index
        self.column_digits = column_digits or {}

    def rows(self) -> tuple[list[str], list[list[str]]]:
        frame = self.frame.reset_index() if self.index else self.frame
        header = [_cell(c if c is not None else "", self.digits) for c in frame.columns]
        if self.index:
            header[0] = str(self.frame.index.name or "")
        digits = [self.column_digits.get(c, self.digits) for c in frame.columns]
        body = [[_cell(v, d) for v, d in zip(row, digits)] for row in frame.itertuples(index=False)]
        return header, body

    def _repr_markdown_(self) -> str:
        header, body = self.rows()
        header = [h.replace("|", "\\|") for h in header]
        body = [[v.replace("|", "\\|") for v in r] for r in body]
        numeric = [all(re.fullmatch(r"[-+]?[\d,.]+|–", r[j]) for r in body) if body else False
                   for j in range(len(header))]
        align = ["---:" if n else "---" for n in numeric]
        lines = ["| " + " | ".join(h or " " for h in header) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        caption = self.caption.replace("\n", " ")
        return f"::::{{table}} {caption}\n:name: {self.name}\n\n" + "\n".join(lines) + "\n::::\n"

    def _repr_html_(self) -> str:
        header, body = self.rows()
        header = [escape(h) for h in header]
        body = [[escape(v) for v in r] for r in body]
        head = "".join(f"<th>{h}</th>" for h in header)
        rows = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>" for r in body)
        return f"<table><caption>{self.caption}</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    def __repr__(self) -> str:
        header, body = self.rows()
        return self.caption + "\n" + pd.DataFrame(body, columns=header).to_string(index=False)


def short_column(name) -> str:
    """A column header with the subtypes' names abbreviated (``test AUC subdural`` -> ``test AUC SDH``)."""
    return re.sub("|".join(LABEL_SHORT), lambda m: LABEL_SHORT[m.group()], str(name))


class Figure:
    """An image file shown as a numbered, captioned figure: a MyST ``figure`` directive for the book (its path
    relative to the chapter's page), the image with its caption for Jupyter."""

    def __init__(self, path, name: str, caption: str, page_dir, width: str = "100%"):
        if not re.fullmatch(r"fig-[a-z0-9-]+", name):
            raise ValueError(f"figure name {name!r}: use fig- followed by lower-case letters, digits and dashes")
        self.path, self.name, self.caption, self.width = Path(path), name, caption, width
        self.relative = Path(os.path.relpath(self.path.resolve(), Path(page_dir).resolve())).as_posix()

    def _repr_markdown_(self) -> str:
        return (f"::::{{figure}} {self.relative}\n:name: {self.name}\n:width: {self.width}\n\n"
                f"{self.caption}\n::::\n")

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.path.read_bytes()).decode()
        return (f'<figure><img src="data:image/png;base64,{data}" style="max-width:100%">'
                f"<figcaption>{escape(self.caption)}</figcaption></figure>")


def table(frame: pd.DataFrame, name: str, caption: str, digits: int = 3, index: bool = True,
          short_columns: bool = True, column_digits: dict | None = None) -> Table:
    """A numbered, captioned table (see :class:`Table`) that fits the book's column: run names become short
    labels and, unless ``short_columns`` is off (a header that names a window, not a label), subtypes in the
    headers their abbreviations, each legend added to the caption where it is needed. ``digits`` rounds every
    number, ``column_digits`` (column -> decimals) the columns that need other rounding. A table too wide for
    the column is better turned on its side (``frame.T``) than scrolled."""
    frame = frame.copy()
    if isinstance(frame.columns, pd.MultiIndex):  # ("brain", "contrast") -> "brain contrast"
        frame.columns = [" ".join(str(level) for level in c if str(level)) for c in frame.columns]
    if index and isinstance(frame.index, pd.MultiIndex):  # each level its own column
        frame, index = frame.reset_index(), False
    shown = [str(i) for i in frame.index] + [v for v in frame.to_numpy().ravel() if isinstance(v, str)]
    if index:
        frame.index = [short_label(str(i)) for i in frame.index]
        frame.index.name = None
    frame = frame.map(lambda v: short_label(v) if isinstance(v, str) else v)
    abbreviated = short_columns and any(short_column(c) != str(c) for c in frame.columns)
    column_digits = dict(column_digits or {})
    if short_columns:
        frame.columns = [short_column(c) for c in frame.columns]
        column_digits = {short_column(c): d for c, d in column_digits.items()}
    legends = [LEGEND] if any(short_label(v) != v for v in shown) else []
    if abbreviated:
        legends.append(LABEL_LEGEND)
    return Table(frame, name, " ".join([caption, *legends]), digits, index, column_digits)


def beside_paper(paper_table: pd.DataFrame, scores=("accuracy", "F1", "recall", "precision", "AUC"),
                 ours_only=("AUC any", "RSNA log loss")) -> pd.DataFrame:
    """One of ``tables.paper_table``'s tables in long form: for each row, ours and then the paper's, so the
    paper's numbers sit under ours in the same columns instead of five more columns to the right (:func:`table`
    shortens the row names)."""
    rows = []
    for name, row in paper_table.iterrows():
        rows.append({"row": str(name), "from": "ours", **{s: row[s] for s in scores}, **{s: row[s] for s in ours_only}})
        if any(np.isfinite(row.get(f"paper {s}", np.nan)) for s in scores):
            rows.append({"row": "", "from": "paper", **{s: row[f"paper {s}"] for s in scores},
                         **{s: np.nan for s in ours_only}})
    return pd.DataFrame(rows)


def headline_table(labels: pd.DataFrame) -> pd.DataFrame:
    """``comparisons.headline``'s per-label table for the page: the AUC and its interval in one column, rounded to
    what that interval justifies, the threshold scores beside it and the positives as counts."""
    out = labels.drop(columns=["AUC", "AUC 95% low", "AUC 95% high"]).copy()
    out.insert(0, "AUC (95 % CI)", [with_interval(v, lo, hi, prefix="")
                                    for v, lo, hi in zip(labels["AUC"], labels["AUC 95% low"], labels["AUC 95% high"])])
    if "positives" in out:
        out["positives"] = out["positives"].astype(int)
    return out


class Text:
    """A value glued as text: its plain form is the text itself, without the quotes a ``str`` would get."""

    def __init__(self, text: str):
        self.text = str(text)

    def __repr__(self) -> str:
        return self.text


def data_kind(src) -> str:
    """What a source is, as the captions say it: "phantom" (a cohort ``ichlib.phantom`` wrote, known from its
    manifest) or "real data" (Kaggle's layout without one). Glued as ``data_kind`` by every chapter, so no
    page calls real data phantom or the phantom real."""
    kind = "phantom" if src.phantom else "real data"
    glue("data_kind", kind)
    return kind


def glue(name: str, value) -> None:
    """Glue ``value`` as text under ``name`` for ``{glue:text}`` (the chapter's summary, the landing page's
    abstract); floats are glued with three decimals unless given as text."""
    from myst_nb import glue as myst_glue

    text = f"{value:.3f}" if isinstance(value, (float, np.floating)) else str(value)
    myst_glue(name, Text(text), display=False)


def source(*functions):
    """The code of ``functions`` shown on the page as a Python block: where a chapter explains a method, the
    lines that compute it, read from ``ichlib`` itself so the page cannot drift from the code."""
    import inspect

    from IPython.display import Markdown

    code = "\n\n".join(inspect.getsource(f).rstrip() for f in functions)
    return Markdown(f"```python\n{code}\n```")


def interval_column(frame: pd.DataFrame, value: str, low: str, high: str) -> pd.DataFrame:
    """``frame`` with the three columns ``value``, ``low`` and ``high`` shown as one, "value (95 % CI)", where
    ``value`` stood: one column instead of three keeps a table inside the page's column."""
    out = frame.drop(columns=[low, high])
    at = list(out.columns).index(value)
    merged = [with_interval(v, lo, hi, prefix="") for v, lo, hi in zip(frame[value], frame[low], frame[high])]
    out.insert(at, f"{value} (95 % CI)", merged)
    return out.drop(columns=[value])
