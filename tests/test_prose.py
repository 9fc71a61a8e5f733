"""The book reads as a student reads it: short paragraphs, code that fits the text column, checks shown as results.

These guards read the committed sources only (no execution, a second or two for the whole book):

- no markdown paragraph (or list item) is longer than :data:`MAX_WORDS` words, in a notebook or a page;
- no line of a code cell the reader sees is longer than :data:`MAX_LINE` characters (a cell tagged ``remove-cell``
  or ``remove-input`` is not seen; a ``hide-input`` cell is, once unfolded);
- between two ``##`` headings, at most one visible code cell consists only of ``assert`` statements or of prints of
  booleans: checks that the reader need not see go to ``tests/`` or to a hidden cell (tag ``remove-cell``), which
  still fails the build;
- every numbered chapter (``ch*.ipynb``) has a "Summary" heading and an "Exercises" heading.

Each check is also fed a bad snippet below, so that it can fail.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import nbformat
import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
PAGES = sorted(BOOK.glob("*.md"))
CHAPTERS = [p for p in NOTEBOOKS if p.name.startswith("ch")]

MAX_WORDS = 220  #: the longest paragraph, in words (the style guide aims at about 200)
MAX_LINE = 88  #: the widest visible code line, in characters: what the book's text column shows unscrolled
HIDDEN = {"remove-cell", "remove-input"}  #: tags that keep a code cell's source off the page

#: Notebooks that other work is rewriting now (issue 16's pass over the book is split between sessions); each is
#: exempt from the guards until that work lands, then leaves this set. Every other file must pass.
PENDING: set[str] = set()

# --- reading the sources -------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})")
_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s+")


def paragraphs(markdown: str) -> list[str]:
    """The prose paragraphs of ``markdown``: blocks between blank lines, each list item on its own, headings,
    tables, display math (``$$ ... $$``), HTML comments and the lines that open or close a directive left out.
    Text inside a directive (an exercise, an admonition) is prose and counts."""
    markdown = re.sub(r"<!--.*?-->", "", markdown, flags=re.DOTALL)
    markdown = re.sub(r"\$\$.*?\$\$[^\n]*", "", markdown, flags=re.DOTALL)
    found, current = [], []
    fences = []  # the open fences, innermost last: (marker, "code" or "directive")
    for line in markdown.splitlines():
        fence = _FENCE.match(line)
        if fence:
            marker, info = fence.group(1), line.strip()[len(fence.group(1)):].strip()
            closes = fences and not info and marker[0] == fences[-1][0][0] and len(marker) >= len(fences[-1][0])
            if closes:
                fences.pop()
            else:
                fences.append((marker, "directive" if info.startswith("{") or marker[0] == ":" else "code"))
            if current:
                found.append(" ".join(current))
                current = []
            continue
        if any(kind == "code" for _, kind in fences):
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "|", ":")) or _ITEM.match(line):
            if current:
                found.append(" ".join(current))
            current = [] if not stripped or stripped.startswith(("#", "|", ":")) else [_ITEM.sub("", line)]
            continue
        current.append(stripped)
    if current:
        found.append(" ".join(current))
    return found


def words(paragraph: str) -> int:
    """Words of a paragraph; an inline formula ``$...$`` counts as one."""
    return len(re.sub(r"\$[^$]+\$", "x", paragraph).split())


@functools.cache
def cells(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


def markdown_of(path: Path) -> list[str]:
    if path.suffix == ".md":
        return [path.read_text()]
    return [c.source for c in cells(path) if c.cell_type == "markdown"]


def visible_code(path: Path) -> list[tuple[int, str]]:
    """``(index, source)`` of the code cells a reader sees, in order."""
    return [(i, c.source) for i, c in enumerate(cells(path))
            if c.cell_type == "code" and not HIDDEN & set(c.metadata.get("tags", []))]


# --- the checks ----------------------------------------------------------------------------------------------------


def long_paragraphs(markdown: str, limit: int = MAX_WORDS) -> list[str]:
    return [f"{words(p)} words: {p[:60]}..." for p in paragraphs(markdown) if words(p) > limit]


def long_lines(source: str, limit: int = MAX_LINE) -> list[str]:
    return [f"{len(line)} characters: {line[:60]}..." for line in source.splitlines() if len(line) > limit]


_BOOLEAN_CALLS = {"bool", "all", "any", "isclose", "allclose", "equal", "array_equal"}


def _boolean(node: ast.AST) -> bool:
    """An expression whose value is a truth value (a comparison, ``and``/``or``/``not``, ``bool(...)``, ...)."""
    if isinstance(node, (ast.Compare, ast.BoolOp)) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
        return True
    if isinstance(node, ast.Call):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        return name in _BOOLEAN_CALLS
    return False


def _shows_only_booleans(node: ast.AST) -> bool:
    """A print, or a displayed value, that shows nothing but truth values."""
    if _boolean(node):
        return True
    if isinstance(node, ast.JoinedStr):
        values = [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
        return bool(values) and all(_boolean(v) for v in values)
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print":
        return bool(node.args) and all(_shows_only_booleans(a) or isinstance(a, ast.Constant) for a in node.args) \
            and not all(isinstance(a, ast.Constant) for a in node.args)
    return False


def only_checks(source: str) -> bool:
    """Whether a code cell holds nothing but ``assert`` statements and prints (or displays) of booleans."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        body = ast.parse("\n".join(lines)).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(s, ast.Assert) or (isinstance(s, ast.Expr) and _shows_only_booleans(s.value))
                              for s in body)


def check_cells_per_section(path: Path) -> dict[str, int]:
    """For each ``##`` section of a notebook, the number of its visible code cells that hold only checks."""
    counts, section = {}, "(before the first section)"
    for cell in cells(path):
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("## "):
                    section = line[3:].strip()
        elif not HIDDEN & set(cell.metadata.get("tags", [])) and only_checks(cell.source):
            counts[section] = counts.get(section, 0) + 1
    return counts


def swallowed_lines(markdown: str) -> list[str]:
    """Lines of prose that begin with ``%``, which MyST reads as a comment and drops from the page (a percent sign
    that line-wrapping put at the start of a line); lines inside code fences are code and are left alone."""
    found, fences = [], []  # the open fences, innermost last: (marker, "code" or "directive"), as in paragraphs()
    for line in markdown.splitlines():
        fence = _FENCE.match(line)
        if fence:
            marker, info = fence.group(1), line.strip()[len(fence.group(1)):].strip()
            if fences and not info and marker[0] == fences[-1][0][0] and len(marker) >= len(fences[-1][0]):
                fences.pop()
            else:
                fences.append((marker, "directive" if info.startswith("{") or marker[0] == ":" else "code"))
        elif not any(kind == "code" for _, kind in fences) and line.lstrip().startswith("%"):
            found.append(line)
    return found


def headings(path: Path) -> list[str]:
    return [line.lstrip("#").strip() for source in markdown_of(path) for line in source.splitlines()
            if re.match(r"#{2,}\s", line)]


# --- the tests -----------------------------------------------------------------------------------------------------


def checked(paths: list[Path]) -> list:
    """``paths`` as parameters; a file in :data:`PENDING` is skipped, with the reason on show."""
    return [pytest.param(p, id=p.name, marks=pytest.mark.skip(reason="pending: rewritten in another branch"))
            if p.stem in PENDING else pytest.param(p, id=p.name) for p in paths]


@pytest.mark.parametrize("path", checked(NOTEBOOKS + PAGES))
def test_paragraphs_are_short(path):
    found = [f"{path.name}: {p}" for source in markdown_of(path) for p in long_paragraphs(source)]
    assert not found, "split or cut these paragraphs:\n" + "\n".join(found)


@pytest.mark.parametrize("path", checked(NOTEBOOKS + PAGES))
def test_no_line_of_prose_is_dropped_as_a_comment(path):
    found = [f"{path.name}: {line}" for source in markdown_of(path) for line in swallowed_lines(source)]
    assert not found, "a line starting with % is a MyST comment; rewrap:\n" + "\n".join(found)


@pytest.mark.parametrize("path", checked(NOTEBOOKS))
def test_visible_code_fits_the_text_column(path):
    found = [f"{path.name}, cell {i}: {line}" for i, source in visible_code(path) for line in long_lines(source)]
    assert not found, "wrap these lines, or hide the cell:\n" + "\n".join(found)


@pytest.mark.parametrize("path", checked(NOTEBOOKS))
def test_at_most_one_visible_check_cell_per_section(path):
    crowded = {section: n for section, n in check_cells_per_section(path).items() if n > 1}
    assert not crowded, f"{path.name}: sections with several visible assert/boolean cells: {crowded}"


@pytest.mark.parametrize("path", checked(CHAPTERS))
def test_chapters_end_with_a_summary_and_exercises(path):
    found = headings(path)
    assert "Summary" in found and "Exercises" in found, f"{path.name} has the headings {found}"


def test_no_pending_file_is_missing():
    """A file in :data:`PENDING` that no longer exists (renamed, merged) must leave the set."""
    assert PENDING <= {p.stem for p in NOTEBOOKS + PAGES}


# --- each check can fail -------------------------------------------------------------------------------------------


def test_a_long_paragraph_is_caught():
    long = " ".join(["word"] * (MAX_WORDS + 1))
    assert long_paragraphs(f"# Title\n\n{long}\n\nshort one\n")
    assert long_paragraphs(f"- short item\n- {long}\n")
    assert not long_paragraphs("- " + " ".join(["w"] * 150) + "\n- " + " ".join(["w"] * 150) + "\n")
    assert not long_paragraphs(f"```python\n{long}\n```\n")  # code is not prose
    assert long_paragraphs(f"```python\nx = 1\n```\n\n{long}\n")  # but the prose after it is
    assert long_paragraphs(f"````{{exercise}} Title\n:label: x\n\n{long}\n````\n")  # so is an exercise


def test_a_line_that_starts_with_a_percent_sign_is_caught():
    prose = "```{note}\nthe share rose to 90.9\n%, and then\n```\n\n```python\n%timeit f()\n```\n\nup 5\n% more"
    assert swallowed_lines(prose) == ["%, and then", "% more"]


def test_a_long_line_is_caught():
    assert long_lines("x = 1\n" + "y = " + "1 + " * 30 + "1\n")
    assert not long_lines("x = 1\n" + "y = " + "1 + " * 20 + "1\n")


def test_a_cell_of_checks_is_caught():
    assert only_checks("assert x > 0\nassert abs(y) < 1e-6  # tight")
    assert only_checks('print(f"close: {torch.allclose(a, b)}, ordered: {bool(x < y)}")')
    assert only_checks("a == b")
    assert not only_checks('print(f"largest gap {gap:.2e}")\nassert gap < 1e-6')
    assert not only_checks("assert x\ny = f(x)")


def test_a_crowded_section_and_a_missing_summary_are_caught(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter\n\n## A section"),
                nbformat.v4.new_code_cell("assert 1 < 2"),
                nbformat.v4.new_code_cell("print(1 < 2)"),
                nbformat.v4.new_code_cell("assert 2 < 3", metadata={"tags": ["remove-cell"]}),
                nbformat.v4.new_markdown_cell("## Exercises")]
    path = tmp_path / "ch99_bad.ipynb"
    nbformat.write(nb, path)
    assert check_cells_per_section(path) == {"A section": 2}
    assert "Summary" not in headings(path) and "Exercises" in headings(path)
