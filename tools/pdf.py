"""Print the built book to one PDF, offline, with the system Chromium (the browser the browser test drives).

    python tools/pdf.py                                   # _build/html -> _build/pdf/diffnotes.pdf
    python tools/pdf.py --html other/_build/html --out book.pdf

Every page of ``_toc.yml`` is served from a local server (every request to another host is blocked), loaded in
headless Chromium, printed once MathJax has typeset it (so the PDF holds typeset math, not TeX) with the theme's
print style (no sidebars), and the pages are joined in the book's order with pypdf, with one bookmark per page named
by its title. Needs the built book (``make book``), Debian's chromium, playwright and pypdf (``make pdf`` has them).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import tempfile
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]
#: The width the pages are laid out at before printing: A4 less the 15 mm margins, at CSS's 96 pixels per inch.
PRINT_WIDTH_PX = round((210 - 2 * 15) / 25.4 * 96)
#: Added to the theme's print style: code and outputs are set at 11 px, at which a line of 88 characters (the book's
#: limit) fits the column, and longer ones wrap instead of running past the paper's edge (the screen scrolls them
#: sideways, paper cannot); a cell's box moves to the next page whole rather than leave an empty frame behind
#: when it fits there, and a longer one breaks inside its code; display math and tables are set smaller (the
#: notation page's table needs 75 % to fit).
PRINT_CSS = """
pre { white-space: pre-wrap !important; overflow-wrap: anywhere !important; font-size: 11px !important;
      break-inside: auto !important; }
div.cell_input, div.cell_output { break-inside: avoid; }
mjx-container[display="true"] { font-size: 90% !important; }
table { font-size: 75%; }
th, td { overflow-wrap: anywhere; }
"""
#: Blocks that would still be cut off at the paper's edge: their content is wider than their box, or their box ends
#: past the page (1 px of rounding allowed).
WIDE_BLOCKS_JS = """() => [...document.querySelectorAll('pre, table, mjx-container[display="true"], img')]
    .filter(e => e.scrollWidth > e.clientWidth + 1
                 || e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .map(e => `${e.tagName.toLowerCase()} ${e.scrollWidth} px: ${e.textContent.trim().slice(0, 60)}`)"""


def toc_pages(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """The HTML path of every page in ``_toc.yml``, in the book's order."""
    data = yaml.safe_load(toc.read_text())
    files = [data["root"]] + [c["file"] for part in data.get("parts", []) for c in part["chapters"]]
    return [re.sub(r"\.(md|ipynb)$", "", f) + ".html" for f in files]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def print_pages(html: Path, pages: list[str], folder: Path) -> list[tuple[Path, str, list[str]]]:
    """Print each page to its own PDF in ``folder``; returns (file, page title, the blocks too wide for the paper)
    in order."""
    from playwright.sync_api import sync_playwright

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    printed = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": PRINT_WIDTH_PX, "height": 1000})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith((base, "data:")) else r.abort())
            for i, path in enumerate(pages):
                response = page.goto(base + path, wait_until="load")
                if response is None or not response.ok:
                    raise FileNotFoundError(f"{path}: listed in _toc.yml but not in the built book {html}")
                page.wait_for_function("() => window.MathJax === undefined || (MathJax.startup && MathJax.startup.promise)")
                page.evaluate("() => window.MathJax === undefined ? null : MathJax.startup.promise")
                page.emulate_media(media="print")
                page.add_style_tag(content=PRINT_CSS)
                wide = page.evaluate(WIDE_BLOCKS_JS)
                out = folder / f"{i:03d}.pdf"
                page.pdf(path=str(out), format="A4", print_background=True,
                         margin={"top": "15mm", "bottom": "15mm", "left": "15mm", "right": "15mm"})
                printed.append((out, page.title().split(" — ")[0].strip(), wide))
            browser.close()
    finally:
        httpd.shutdown()
    return printed


def join(printed: list[tuple[Path, str, list[str]]], out: Path) -> int:
    """Join the printed pages into ``out`` with a bookmark per page; returns the number of PDF pages."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for path, title, _ in printed:
        start = len(writer.pages)
        writer.append(str(path))
        writer.add_outline_item(title=title, page_number=start)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.pdf")
    with partial.open("wb") as f:
        writer.write(f)
    partial.replace(out)  # all of it or nothing
    return len(writer.pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built book")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "pdf" / "diffnotes.pdf")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        parser.error(f"--html: no built book at {args.html} (run make book first)")
    with tempfile.TemporaryDirectory() as folder:
        printed = print_pages(args.html, toc_pages(), Path(folder))
        n = join(printed, args.out)
    wide = {title: blocks for _, title, blocks in printed if blocks}
    args.out.with_suffix(".wide.json").write_text(json.dumps(wide, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}: {len(printed)} chapters and pages of the book, {n} PDF pages")
    for title, blocks in wide.items():
        print(f"{title}: {len(blocks)} block(s) wider than the paper, cut off:", *blocks, sep="\n  ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
