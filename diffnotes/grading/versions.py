"""The student and solution versions of a source notebook in nbgrader's format, and the release of a folder of them.

The transformations are those of nbgrader's ``ClearSolutions`` and ``ClearHiddenTests`` preprocessors (nbgrader
0.9), written out so that releasing needs neither nbgrader nor its database:

- a solution region, from a line containing ``BEGIN SOLUTION`` to one containing ``END SOLUTION``, becomes the stub
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the indentation of the ``BEGIN`` line; a solution cell
  without delimiters is replaced whole (markdown: ``YOUR ANSWER HERE``);
- a hidden-test region, ``BEGIN HIDDEN TESTS`` to ``END HIDDEN TESTS``, is removed with its delimiters;
- delimiters outside the cells allowed to hold them (solution cells, grade cells) are an error, as nbgrader's
  ``enforce_metadata`` makes them.

Notebooks are plain JSON dicts (nbformat 4); every output is cleared.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path

BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"


def source_text(cell: dict) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def nbgrader_meta(cell: dict) -> dict:
    """The cell's ``metadata["nbgrader"]`` (empty if it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_solution(cell: dict) -> bool:
    """Whether the cell is one the student writes (``solution: true``)."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell: dict) -> bool:
    """Whether the cell is an autograded test: ``grade: true`` and not a solution, in a code cell."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _where(cell: dict, index: int) -> str:
    return f"cell {index} (grade_id {nbgrader_meta(cell).get('grade_id', '-')!r})"


def _cut(text: str, begin: str, end: str, where: str, replace: Callable[[str], list[str]]) -> tuple[str, bool]:
    """Replace every region ``begin`` ... ``end`` (delimiter lines included) by ``replace(indent)``."""
    out, inside, found = [], False, False
    for line in text.split("\n"):
        if begin in line:
            if inside:
                raise ValueError(f"{where}: {begin!r} inside another region (nesting is not allowed)")
            inside, found = True, True
            out.extend(replace(re.match(r"\s*", line).group(0)))
        elif end in line:
            if not inside:
                raise ValueError(f"{where}: {end!r} without a {begin!r} before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {begin!r} without a matching {end!r}")
    return "\n".join(out), found


def strip_delimiters(text: str, *delimiters: str) -> str:
    """``text`` without the lines that contain one of ``delimiters``."""
    return "\n".join(line for line in text.split("\n") if not any(d in line for d in delimiters))


def _fresh(nb: dict) -> dict:
    """A deep copy with outputs and execution counts cleared."""
    nb = copy.deepcopy(nb)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def check_source(nb: dict) -> None:
    """Raise ``ValueError`` naming the cell if delimiters sit where nbgrader does not allow them, or grade ids repeat.

    Solution delimiters belong in solution cells and hidden-test delimiters in grade cells (nbgrader's
    ``enforce_metadata``), and each ``BEGIN`` needs its ``END``; every nbgrader cell needs a ``grade_id``, unique in the notebook; tests need points.
    """
    seen: set[str] = set()
    for i, cell in enumerate(nb.get("cells", [])):
        text, meta, where = source_text(cell), nbgrader_meta(cell), _where(cell, i)
        if BEGIN_SOLUTION in text and not is_solution(cell):
            raise ValueError(f"{where} has solution delimiters but is not a solution cell")
        if BEGIN_HIDDEN in text and not meta.get("grade"):
            raise ValueError(f"{where} has hidden-test delimiters but is not a grade cell")
        for begin, end in ((BEGIN_SOLUTION, END_SOLUTION), (BEGIN_HIDDEN, END_HIDDEN)):
            _cut(text, begin, end, where, lambda indent: [])  # raises if the regions do not pair up
        if meta:
            grade_id = meta.get("grade_id")
            if not grade_id or grade_id in seen:
                raise ValueError(f"{where}: every nbgrader cell needs a unique grade_id, got {grade_id!r}")
            seen.add(grade_id)
        if is_test(cell) and not float(meta.get("points", 0)) > 0:
            raise ValueError(f"{where} is a test cell and needs points > 0, got {meta.get('points')!r}")


def student_version(nb: dict) -> dict:
    """The version students receive: solutions replaced by stubs, hidden tests removed, outputs cleared."""
    check_source(nb)
    nb = _fresh(nb)
    for i, cell in enumerate(nb["cells"]):
        text, where = source_text(cell), _where(cell, i)
        if is_solution(cell):
            code = cell.get("cell_type") == "code"
            stub = CODE_STUB if code else TEXT_STUB
            text, found = _cut(text, BEGIN_SOLUTION, END_SOLUTION, where,
                               lambda indent, stub=stub: [indent + line for line in stub.split("\n")])
            if not found:
                text = stub
        if nbgrader_meta(cell).get("grade"):
            text, _ = _cut(text, BEGIN_HIDDEN, END_HIDDEN, where, lambda indent: [])
        cell["source"] = text
    return nb


def solution_version(nb: dict) -> dict:
    """The instructor's version: the source with its delimiter lines removed (hidden tests kept), outputs cleared."""
    check_source(nb)
    nb = _fresh(nb)
    for cell in nb["cells"]:
        cell["source"] = strip_delimiters(source_text(cell), BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
    return nb


def graded_tests(nb: dict) -> list[tuple[str, float]]:
    """The autograded tests of a notebook, in order: (grade_id, points)."""
    return [(nbgrader_meta(c)["grade_id"], float(nbgrader_meta(c)["points"])) for c in nb["cells"] if is_test(c)]


def read_notebook(path: Path) -> dict:
    """Read a notebook file as a JSON dict; ``ValueError`` if it is not a notebook."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path} is not a Jupyter notebook (no list of cells)")  # noqa: TRY004 (bad input, one kind)
    return nb


def write_notebook(nb: dict, path: Path) -> None:
    """Write a notebook as nbformat does (indent 1, a final newline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def release(source: Path, release_dir: Path, solution_dir: Path) -> list[Path]:
    """Write ``<release_dir>/<name>.ipynb`` (student) and ``<solution_dir>/<name>.ipynb`` for every source notebook.

    Returns the source notebooks released. Raises ``ValueError`` if ``source`` holds no notebook.
    """
    sources = sorted(Path(source).glob("*.ipynb"))
    if not sources:
        raise ValueError(f"source must be a folder of source notebooks (*.ipynb); {source} has none")
    for path in sources:
        nb = read_notebook(path)
        write_notebook(student_version(nb), Path(release_dir) / path.name)
        write_notebook(solution_version(nb), Path(solution_dir) / path.name)
    return sources
