"""Grade a folder of submitted notebooks against their source notebooks: scores, a CSV table, per-student feedback.

A submission is ``<submissions>/<student>/.../<assignment>.ipynb`` (nbgrader's ``submitted/`` layout fits), where
``<assignment>.ipynb`` names a source notebook. The notebook that runs is rebuilt from the source: the student's
text is taken only for the solution cells, matched by ``grade_id`` (a deleted one runs empty), and every test cell,
hidden tests included, comes from the source, so deleting, renaming or editing a test changes nothing. It runs in
a fresh kernel (:mod:`diffnotes.grading.execute`) in an empty temporary folder, in the quick profile on the CPU,
with a limit per cell and one for the whole notebook; past the latter the kernel is killed. A test earns its
points if its cell raised nothing. One submission's failure, of whatever kind, never stops the others.
"""

from __future__ import annotations

import csv
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from diffnotes.grading.execute import Limits, execute
from diffnotes.grading.versions import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    END_HIDDEN,
    END_SOLUTION,
    check_source,
    graded_tests,
    is_solution,
    is_test,
    nbgrader_meta,
    read_notebook,
    source_text,
    strip_delimiters,
)


@dataclass
class Result:
    """The grade of one submission: per test (grade_id, points earned, points possible, why it failed or ""), notes
    on the run, and the seconds the notebook ran (its kernel's start excluded, as in the time limit)."""

    student: str
    assignment: str
    tests: list[tuple[str, float, float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(t[1] for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t[2] for t in self.tests)


def assemble(source: dict, submission: dict | None) -> dict:
    """The notebook to run: the source's cells, with the submission's text in the solution cells only.

    Hidden-test and solution delimiters are removed (they are comments, but the source's solution text must not
    run in place of a missing answer: a solution cell the submission lacks runs empty).
    """
    check_source(source)
    answers: dict[str, str] = {}
    for cell in (submission or {}).get("cells", []) if isinstance(submission, dict) else []:
        grade_id = nbgrader_meta(cell).get("grade_id") if isinstance(cell, dict) else None
        if isinstance(grade_id, str) and grade_id not in answers:
            answers[grade_id] = source_text(cell)
    cells = []
    for cell in source["cells"]:
        cell = json.loads(json.dumps(cell))
        if is_solution(cell):
            cell["source"] = answers.get(nbgrader_meta(cell)["grade_id"], "")
        else:
            cell["source"] = strip_delimiters(source_text(cell), BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    return {**source, "cells": cells}


def grade(source: dict, submission: dict | None, student: str, assignment: str, limits: Limits) -> Result:
    """Grade one submission (None: it could not be read) against its source notebook."""
    result = Result(student, assignment)
    nb = assemble(source, submission)
    cells, ending, result.seconds = execute(nb, limits)
    if ending != "done":
        result.notes.append(ending)
    points = dict(graded_tests(nb))
    for index, cell in enumerate(nb["cells"]):
        meta = nbgrader_meta(cell)
        status, message = cells.get(index, ("missing", ""))
        if is_test(cell):
            grade_id = meta["grade_id"]
            if status == "ok":
                result.tests.append((grade_id, points[grade_id], points[grade_id], ""))
            else:
                why = message if status != "missing" else f"not run ({ending})"
                result.tests.append((grade_id, 0.0, points[grade_id], why))
        elif is_solution(cell) and status in ("error", "timeout"):
            result.notes.append(f"your cell {meta['grade_id']!r} raised {message}")
    return result


def grade_file(source: dict, path: Path, student: str, assignment: str, limits: Limits) -> Result:
    """Grade the notebook file ``path``; one that cannot be read runs with empty answers (zero, with a note)."""
    try:
        submission, note = read_notebook(path), ""
    except (ValueError, UnicodeDecodeError) as error:
        submission = None
        note = f"could not read the notebook ({type(error).__name__}): its solution cells count as empty"
    result = grade(source, submission, student, assignment, limits)
    result.notes[:0] = [note] if note else []
    return result


def _submissions(folder: Path) -> list[tuple[str, str, Path]]:
    """(student, assignment, path) for every notebook at least one folder below ``folder``."""
    found = []
    for path in sorted(Path(folder).rglob("*.ipynb")):
        parts = path.relative_to(folder).parts
        if ".ipynb_checkpoints" in parts or len(parts) < 2:
            continue
        found.append((parts[0], path.stem, path))
    return found


def grade_folder(
    submissions: Path, source: Path, out: Path, limits: Limits | None = None, jobs: int = 1
) -> list[Result]:
    """Grade every ``<submissions>/<student>/**/<assignment>.ipynb``; write ``<out>/grades.csv`` and
    ``<out>/feedback/<student>/<assignment>.txt``. Returns the results, in the CSV's order. ``limits``: the
    default :class:`~diffnotes.grading.execute.Limits` unless given."""
    limits = limits or Limits()
    if not Path(submissions).is_dir():
        raise ValueError(f"submissions must be a folder of <student>/<assignment>.ipynb, got {submissions}")
    sources = {p.stem: p for p in sorted(Path(source).glob("*.ipynb"))}
    if not sources:
        raise ValueError(f"source must be a folder of source notebooks (*.ipynb); {source} has none")
    if not jobs >= 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")

    notebooks = {}
    for name, path in sources.items():
        try:
            notebooks[name] = read_notebook(path)
            check_source(notebooks[name])  # a faulty source stops here, before any grading
        except ValueError as error:
            raise ValueError(f"source notebook {path}: {error}") from None

    def one(item: tuple[str, str, Path]) -> Result:
        student, assignment, path = item
        if assignment not in notebooks:
            known = ", ".join(notebooks)
            return Result(student, assignment, notes=[f"no source notebook is named {assignment}.ipynb; known: {known}"])
        try:
            return grade_file(notebooks[assignment], path, student, assignment, limits)
        except Exception as error:  # noqa: BLE001 (one submission must never stop the others)
            return Result(student, assignment, notes=[f"the grader failed on this submission: {error!r}"])

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, _submissions(Path(submissions))))
    write_reports(results, Path(out))
    return results


def write_reports(results: list[Result], out: Path) -> None:
    """``grades.csv`` (one row per submission) and a feedback text file per submission."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "score", "max_score", "tests", "seconds", "notes"])
        for r in results:
            tests = "; ".join(f"{g}={e:g}/{p:g}" for g, e, p, _ in r.tests)
            writer.writerow([r.student, r.assignment, f"{r.score:g}", f"{r.max_score:g}", tests, f"{r.seconds:.1f}",
                             " | ".join(r.notes)])
    for r in results:
        lines = [f"{r.assignment}: {r.score:g} / {r.max_score:g} points", ""]
        lines += [f"  {g}: {e:g}/{p:g}" + (f"  ({why})" if why else "  passed") for g, e, p, why in r.tests]
        lines += ["", *(f"Note: {n}" for n in r.notes)] if r.notes else []
        path = out / "feedback" / r.student / f"{r.assignment}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
