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
import re
import shutil
import tempfile
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]


def toc_pages(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """The HTML path of every page in ``_toc.yml``, in the book's order."""
    data = yaml.safe_load(toc.read_text())
    files = [data["root"]] + [c["file"] for part in data.get("parts", []) for c in part["chapters"]]
    return [re.sub(r"\.(md|ipynb)$", "", f) + ".html" for f in files]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def print_pages(html: Path, pages: list[str], folder: Path) -> list[tuple[Path, str]]:
    """Print each page to its own PDF in ``folder``; returns (file, page title) in order."""
    from playwright.sync_api import sync_playwright

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    printed = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith((base, "data:")) else r.abort())
            for i, path in enumerate(pages):
                response = page.goto(base + path, wait_until="load")
                if response is None or not response.ok:
                    raise FileNotFoundError(f"{path}: listed in _toc.yml but not in the built book {html}")
                page.wait_for_function("() => window.MathJax === undefined || (MathJax.startup && MathJax.startup.promise)")
                page.evaluate("() => window.MathJax === undefined ? null : MathJax.startup.promise")
                page.emulate_media(media="print")
                out = folder / f"{i:03d}.pdf"
                page.pdf(path=str(out), format="A4", print_background=True,
                         margin={"top": "15mm", "bottom": "15mm", "left": "15mm", "right": "15mm"})
                printed.append((out, page.title().split(" — ")[0].strip()))
            browser.close()
    finally:
        httpd.shutdown()
    return printed


def join(printed: list[tuple[Path, str]], out: Path) -> int:
    """Join the printed pages into ``out`` with a bookmark per page; returns the number of PDF pages."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for path, title in printed:
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
    print(f"wrote {args.out}: {len(printed)} chapters and pages of the book, {n} PDF pages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
