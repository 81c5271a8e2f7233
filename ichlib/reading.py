"""What a reader of the built book sees, measured in headless Chromium at a given window width: tables wider
than the column they sit in, code cells that scroll sideways, figures without a number or caption, and the
abstract's glued values.

    python -m ichlib.reading [_build/html] [--width 1300]     # one line per problem; exits 1 on any, 2 without a book
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .chromium import driver

CHAPTER_PAGES = "book/chapters/{}.html"

# Per page: each table's width against the scrolling box around it, and each image's figure caption.
MEASURE = """
const main = document.querySelector('main') || document.body;
const tables = [], figures = [];
for (const t of main.querySelectorAll('table')) {
  let box = t.parentElement;
  while (box && box !== main && getComputedStyle(box).overflowX === 'visible') box = box.parentElement;
  const caption = t.querySelector('caption');
  tables.push({width: Math.ceil(t.getBoundingClientRect().width), room: Math.floor(box.clientWidth),
               scrolls: box.scrollWidth > box.clientWidth + 1, caption: caption ? caption.innerText.trim() : ''});
}
for (const img of main.querySelectorAll('img')) {
  const figure = img.closest('figure');
  const caption = figure ? figure.querySelector('figcaption') : null;
  figures.push({src: img.getAttribute('src').slice(0, 80), caption: caption ? caption.innerText.trim() : ''});
}
const code = [];
for (const pre of main.querySelectorAll('div.cell_input pre')) {
  if (pre.scrollWidth > pre.clientWidth + 1) code.push(pre.innerText.split('\\n')[0].slice(0, 60));
}
return {tables: tables, figures: figures, code: code, text: main.innerText};
"""


def measure(html: Path, pages: list[str], width: int = 1300) -> dict[str, dict]:
    """Page -> ``{"tables": [...], "figures": [...], "text": ...}`` as Chromium lays the page out at ``width``."""
    browser = driver(width, 1000)
    try:
        found = {}
        for page in pages:
            browser.get((Path(html).resolve() / page).as_uri())
            found[page] = browser.execute_script(MEASURE)
        return found
    finally:
        browser.quit()


def too_wide(page: dict) -> list[dict]:
    """The tables of a measured page that do not fit their column (they scroll sideways)."""
    return [t for t in page["tables"] if t["scrolls"] or t["width"] > t["room"] + 1]


def unnumbered(page: dict) -> list[dict]:
    """The images of a measured page that are not a figure with a numbered caption ("Fig. 3.1 ...")."""
    return [f for f in page["figures"] if not f["caption"].startswith("Fig. ")]


def problems(html: Path, chapters: list[str], tables_in: list[str], width: int = 1300) -> list[str]:
    """Every figure of ``chapters`` without a number and caption, every table of ``tables_in`` and every code cell
    that scrolls sideways, and an abstract still waiting for a chapter, as sentences (empty when the book reads
    well)."""
    pages = ["book/intro.html"] + [CHAPTER_PAGES.format(c) for c in chapters]
    seen = measure(html, pages, width)
    found = []
    if "not built yet" in seen["book/intro.html"]["text"]:
        found.append("the abstract says 'not built yet'")
    for name in chapters:
        page = seen[CHAPTER_PAGES.format(name)]
        found += [f"{name}: an image without a numbered caption ({f['src']})" for f in unnumbered(page)]
        if name in tables_in:
            found += [f"{name}: a table {t['width']} px wide in {t['room']} px ({t['caption'][:60]!r})"
                      for t in too_wide(page)]
        found += [f"{name}: a code cell scrolls sideways ({first!r})" for first in page.get("code", [])]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", nargs="?", default="_build/html")
    parser.add_argument("--width", type=int, default=1300)
    args = parser.parse_args(argv)
    html = Path(args.html)
    chapters = sorted(p.stem for p in (html / "book" / "chapters").glob("*.html"))
    if not chapters or not (html / "book" / "intro.html").is_file():
        print(f"error: {html} holds no built book (book/intro.html and book/chapters/*.html); run make book first",
              file=sys.stderr)
        return 2
    found = problems(html, chapters, chapters, args.width)  # every chapter: figures numbered, tables that fit
    print("\n".join(found) or f"{len(chapters)} chapters at {args.width} px: every table fits, every figure is "
                               "numbered and captioned, the abstract is complete")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
