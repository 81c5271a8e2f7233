"""The landing page's abstract: its prose in ``book/abstract.md``, its numbers glued from the chapters.

In the template, ``[[CHAPTER::key]]`` stands for a value the chapter glued (``ichlib.present.glue``) and
``[[build::key]]`` for a fact of this build that the runner knows (its profile, its time, its machine). Before
``jupyter-book build``, :func:`write` turns the template into ``book/generated/abstract.md``:

- a chapter that has run and glued the key: a ``{glue:text}`` role, which myst-nb fills from the executed chapter;
- a chapter that has not run yet: *not built yet*;
- a chapter that has run without gluing the key (an executed copy older than its notebook, or a renamed key):
  :class:`AbstractError`, naming both, so that text is never silently left empty.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

TOKEN = re.compile(r"\[\[([\w.-]+)::(\w+)\]\]")
COMMENT = re.compile(r"<!--.*?-->\n*", re.S)
NOT_BUILT = "*not built yet*"
BUILD = "build"


class AbstractError(ValueError):
    """A key the abstract needs that a chapter which has run does not glue."""


def glued_keys(notebook: Path) -> set[str]:
    """Names of the values glued in an executed notebook (myst-nb's ``scrapbook`` output metadata)."""
    nb = nbformat.read(notebook, as_version=4)
    return {o["metadata"]["scrapbook"]["name"] for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}


def needed(template: str) -> dict[str, set[str]]:
    """Source (chapter name or ``build``) -> the keys the template takes from it."""
    found: dict[str, set[str]] = {}
    for source, key in TOKEN.findall(template):
        found.setdefault(source, set()).add(key)
    return found


def render(template: str, executed: dict[str, Path], build: dict[str, str]) -> str:
    """The template with every token replaced (see the module's docstring).

    Args:
        executed: chapter name -> its executed copy, for every chapter of the book (missing files: not run).
        build: the runner's facts, ``[[build::key]]`` -> text.
    """
    template = COMMENT.sub("", template)
    missing = sorted(set(needed(template)) - set(executed) - {BUILD})
    if missing:
        raise AbstractError(f"book/abstract.md names chapter(s) not in _toc.yml: {', '.join(missing)}")
    keys = {name: glued_keys(path) for name, path in executed.items()
            if name in needed(template) and path.exists()}

    def value(match: re.Match) -> str:
        source, key = match.groups()
        if source == BUILD:
            if key not in build:
                raise AbstractError(f"book/abstract.md: the runner knows no build fact {key!r} "
                                    f"(it has: {', '.join(sorted(build))})")
            return build[key]
        if source not in keys:
            return NOT_BUILT
        if key not in keys[source]:
            raise AbstractError(f"chapter {source} has run but glues no {key!r}, which book/abstract.md needs: "
                                f"re-run it (python -m ichlib book --only {source}) or fix the key")
        return f"{{glue:text}}`chapters/{source}.ipynb::{key}:s`"

    out = TOKEN.sub(value, template)
    if "[[" in out:  # a token the pattern does not read (a space, an empty key) would reach the page as typed
        bad = out[out.index("[["):].split("]]")[0] + "]]"
        raise AbstractError(f"book/abstract.md: {bad!r} is not a [[chapter::key]] token")
    return out


def write(root: Path, executed: dict[str, Path], build: dict[str, str]) -> Path:
    """Render ``book/abstract.md`` into ``book/generated/abstract.md`` (included by the landing page)."""
    out = root / "book" / "generated" / "abstract.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render((root / "book" / "abstract.md").read_text(), executed, build))
    return out
