"""The book as one PDF (``make pdf``, ``tools/pdf.py``): made offline from the built book by the system Chromium,
with every page of ``_toc.yml`` in order, typeset math and no raw TeX in its text."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("pdf_tool", ROOT / "tools" / "pdf.py")
pdf_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pdf_tool)
HTML = ROOT / "_build" / "html"
OUT = ROOT / "_build" / "pdf" / "diffnotes.pdf"


@pytest.fixture(scope="module")
def book_pdf():
    pytest.importorskip("playwright.sync_api")
    pypdf = pytest.importorskip("pypdf")
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book at {HTML}: run `make book` first")
    assert pdf_tool.main(["--html", str(HTML), "--out", str(OUT)]) == 0
    return pypdf.PdfReader(str(OUT))


def test_the_pdf_has_every_page_of_the_book_in_order(book_pdf):
    titles = [item.title for item in book_pdf.outline]
    assert len(titles) == len(pdf_tool.toc_pages())
    numbered = [int(m.group(1)) for t in titles if (m := re.match(r"(\d+)\. ", t))]
    assert numbered == list(range(1, len(numbered) + 1)) and len(numbered) >= 12  # every chapter, in order
    assert len(book_pdf.pages) > 2 * len(titles)


def test_the_pdf_text_holds_no_raw_tex(book_pdf):
    text = "".join(page.extract_text() or "" for page in book_pdf.pages)
    for raw in ("$$", "\\frac", "\\begin{", "\\mathbf", "\\(", "\\["):
        assert raw not in text, f"raw TeX {raw!r} in the PDF's text"
    assert "Sums of Gaussians" in text and "DDIM" in text


def test_nothing_in_the_pdf_runs_past_the_papers_edge(book_pdf):
    """Code, outputs, display math, tables and figures fit the printed column (tools/pdf.py records what does not)."""
    wide = json.loads(OUT.with_suffix(".wide.json").read_text())
    assert wide == {}, wide


def test_a_missing_book_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        pdf_tool.main(["--html", str(tmp_path), "--out", str(tmp_path / "x.pdf")])
    assert "--html: no built book" in capsys.readouterr().err
