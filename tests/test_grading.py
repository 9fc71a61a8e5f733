"""The assignment tools: student and solution versions in nbgrader's format, and the grader on good and bad input.

Grading starts a kernel per notebook (seconds each), so each test grades several submissions in one call.
"""

import copy
import json
import shutil
from pathlib import Path

import pytest

from diffnotes.grading.__main__ import main
from diffnotes.grading.grader import Limits, assemble, grade_folder
from diffnotes.grading.versions import (
    CODE_STUB,
    check_source,
    graded_tests,
    read_notebook,
    solution_version,
    student_version,
    write_notebook,
)

ASSIGNMENTS = Path(__file__).resolve().parent.parent / "assignments" / "source"


def cell(source: str, grade_id: str | None = None, solution: bool = False, points: float = 0, kind: str = "code"):
    """A notebook cell; with ``grade_id`` an nbgrader cell (a test when it has points)."""
    c = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        c.update(outputs=[], execution_count=None)
    if grade_id:
        c["metadata"]["nbgrader"] = {"grade": points > 0, "grade_id": grade_id, "locked": not solution,
                                     "points": points, "schema_version": 3, "solution": solution, "task": False}
    return c


def notebook(*cells: dict) -> dict:
    return {"cells": list(cells), "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                               "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}


#: A tiny assignment: one function to write, a visible test (1 point) and a test with a hidden part (2 points).
TINY = notebook(
    cell("# Tiny", kind="markdown"),
    cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", "answer", solution=True),
    cell("assert double(2) == 4", "visible", points=1),
    cell("assert double(0) == 0\n### BEGIN HIDDEN TESTS\nassert double(-3) == -6\n### END HIDDEN TESTS",
         "hidden", points=2),
)


def answer(body: str) -> dict:
    """A submission of TINY whose answer cell is ``body``."""
    nb = student_version(TINY)
    nb["cells"][1]["source"] = body
    return nb


def test_student_version_replaces_solutions_and_drops_hidden_tests():
    student = student_version(TINY)
    text = json.dumps(student)
    assert "return 2 * x" not in text and "-6" not in text and "BEGIN" not in text
    assert student["cells"][1]["source"] == "def double(x):\n    " + CODE_STUB.replace("\n", "\n    ")
    assert student["cells"][3]["source"] == "assert double(0) == 0"
    assert [c["metadata"] for c in student["cells"]] == [c["metadata"] for c in TINY["cells"]]


def test_solution_version_keeps_everything_but_the_delimiters():
    solution = solution_version(TINY)
    assert solution["cells"][1]["source"] == "def double(x):\n    return 2 * x"
    assert "assert double(-3) == -6" in solution["cells"][3]["source"] and "BEGIN" not in json.dumps(solution)
    assert graded_tests(solution) == [("visible", 1.0), ("hidden", 2.0)]


@pytest.mark.parametrize("bad, message", [
    (cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "c"), "not a solution cell"),
    (cell("### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS"), "not a grade cell"),
    (cell("### BEGIN SOLUTION\nx = 1", "c", solution=True), "without a matching"),
    (cell("assert True", "answer", points=1), "unique grade_id"),
])
def test_malformed_sources_are_refused_naming_the_cell(bad, message):
    with pytest.raises(ValueError, match=message):
        check_source(notebook(*TINY["cells"], bad))


@pytest.mark.parametrize("name", ["tiny", *sorted(p.stem for p in ASSIGNMENTS.glob("*.ipynb"))])
def test_matches_nbgrader_own_preprocessors(name):
    """Where nbgrader is installed, its ClearSolutions, ClearHiddenTests and ClearOutput make the same student
    version, sources and metadata (checked with nbgrader 0.9.6)."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbgrader")
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

    source = TINY if name == "tiny" else read_notebook(ASSIGNMENTS / f"{name}.ipynb")
    nb = nbformat.from_dict(copy.deepcopy(source))
    for pre in (ClearSolutions(), ClearHiddenTests(), ClearOutput()):
        nb, _ = pre.preprocess(nb, {"language": "python"})
    mine = student_version(source)["cells"]
    assert [c.source for c in nb.cells] == [c["source"] for c in mine]
    assert [c.metadata.get("nbgrader") for c in nb.cells] == [c["metadata"].get("nbgrader") for c in mine]


def test_assemble_takes_only_the_solution_cells_from_the_submission():
    sub = answer("def double(x):\n    return x + x")
    sub["cells"][2]["source"] = "pass  # an edited test"
    del sub["cells"][3]  # a deleted test
    run = assemble(TINY, sub)
    assert [c["source"] for c in run["cells"][1:]] == [
        "def double(x):\n    return x + x", "assert double(2) == 4", "assert double(0) == 0\nassert double(-3) == -6"]
    assert assemble(TINY, None)["cells"][1]["source"] == ""  # no submission: the answer runs empty


def test_bad_submissions_get_what_they_earned_and_leave_the_others_alone(tmp_path):
    """Raising, sleeping forever (stopped at the cell's limit), ignoring interrupts (stopped at the notebook's), killing
    the kernel, printing 5 MB, reading the source, deleted tests, a broken file, and a correct and a wrong answer,
    graded in one call: every one gets its points and a reason."""
    source = tmp_path / "source"
    write_notebook(TINY, source / "tiny.ipynb")
    subs = {
        "good": answer("def double(x):\n    return x * 2"),
        "wrong": answer("def double(x):\n    return abs(2 * x)"),  # passes the visible test, fails the hidden one
        "raises": answer("raise RuntimeError('oops')"),
        "sleeps": answer("import time\ndef double(x):\n    return 2 * x\nwhile True:\n    time.sleep(1)"),
        "dies": answer("import os\nos._exit(1)"),
        "prints": answer("print('x' * 5_000_000)\ndef double(x):\n    return 2 * x"),
        "peeks": answer("hidden = open('../source/tiny.ipynb').read()\ndef double(x):\n    return 2 * x"),
        "deletes": answer("def double(x):\n    return 2 * x"),
    }
    subs["deletes"]["cells"] = subs["deletes"]["cells"][:2]
    for student, nb in subs.items():
        write_notebook(nb, tmp_path / "submitted" / student / "tiny.ipynb")
    (tmp_path / "submitted" / "broken").mkdir()
    (tmp_path / "submitted" / "broken" / "tiny.ipynb").write_text("{not json")
    # A second assignment, with a test between two answers: the second answer ignores every interrupt, so only the
    # notebook's limit stops it, and the test before it keeps its point.
    steps = notebook(TINY["cells"][1], TINY["cells"][2], cell("x = 0", "stubborn", solution=True),
                     cell("assert double(1) == 2", "last", points=1))
    write_notebook(steps, source / "steps.ipynb")
    stubborn = student_version(steps)
    stubborn["cells"][0]["source"] = "def double(x):\n    return 2 * x"
    stubborn["cells"][2]["source"] = ("import time\nwhile True:\n    try:\n        time.sleep(1)\n"
                                      "    except BaseException:\n        pass")
    write_notebook(stubborn, tmp_path / "submitted" / "stubborn" / "steps.ipynb")
    results = grade_folder(tmp_path / "submitted", source, tmp_path / "out", Limits(cell_timeout=8, timeout=30), jobs=2)
    got = {r.student: (r.score, r.max_score) for r in results}
    assert got == {"good": (3, 3), "wrong": (1, 3), "raises": (0, 3), "sleeps": (3, 3), "dies": (0, 3),
                   "prints": (3, 3), "peeks": (0, 3), "deletes": (3, 3), "broken": (0, 3), "stubborn": (1, 2)}, got
    by = {r.student: r for r in results}
    # Stopped by a limit: the notebook's (30 s) as a rule; on a heavily loaded machine the kernel can first be lost to
    # the cell's interrupt, which also ends the run. Either way it keeps the point it earned before (the score above)
    # (how the end is worded depends on which of the two limits acted first), and it did not run past the notebook's.
    assert by["stubborn"].notes and by["stubborn"].seconds <= 30 + 15, (by["stubborn"].notes, by["stubborn"].seconds)
    assert "AssertionError" in by["wrong"].tests[1][3]
    assert any("timed out" in n for n in by["sleeps"].notes)
    assert any("RuntimeError: oops" in n for n in by["raises"].notes)
    assert any("kernel died" in n for n in by["dies"].notes)
    assert any("FileNotFoundError" in n for n in by["peeks"].notes)
    assert any("could not read" in n for n in by["broken"].notes)
    csv = (tmp_path / "out" / "grades.csv").read_text()
    assert "wrong,tiny,1,3,visible=1/1; hidden=0/2," in csv
    feedback = (tmp_path / "out" / "feedback" / "wrong" / "tiny.txt").read_text()
    assert feedback.startswith("tiny: 1 / 3 points") and "hidden: 0/2  (AssertionError" in feedback


def test_cli_release_and_bad_arguments(tmp_path, capsys):
    write_notebook(TINY, tmp_path / "src" / "tiny.ipynb")
    assert main(["release", str(tmp_path / "src"), "--release", str(tmp_path / "r"), "--solution", str(tmp_path / "s")]) == 0
    assert read_notebook(tmp_path / "r" / "tiny.ipynb") == student_version(TINY)
    assert read_notebook(tmp_path / "s" / "tiny.ipynb") == solution_version(TINY)
    with pytest.raises(SystemExit):
        main(["grade", str(tmp_path / "missing"), "--source", str(tmp_path / "src")])
    assert "submissions must be a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["grade", str(tmp_path), "--source", str(tmp_path / "src"), "--timeout", "0"])
    assert "timeout must be > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["grade", str(tmp_path), "--source", str(tmp_path / "src"), "--jobs", "0"])
    assert "jobs must be a positive integer" in capsys.readouterr().err
    write_notebook(notebook(cell("### BEGIN SOLUTION\nx = 1", "c", solution=True)), tmp_path / "bad" / "bad.ipynb")
    with pytest.raises(SystemExit):
        main(["grade", str(tmp_path), "--source", str(tmp_path / "bad")])
    assert "bad.ipynb: cell 0 (grade_id 'c')" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "r")
    write_notebook(TINY, tmp_path / "in" / "stranger" / "other.ipynb")  # no source of that name: noted, not run
    assert main(["grade", str(tmp_path / "in"), "--source", str(tmp_path / "src"), "--out", str(tmp_path / "o")]) == 0
    assert "no source notebook is named other.ipynb; known: tiny" in (tmp_path / "o" / "grades.csv").read_text()


def test_a_kernel_that_does_not_start_in_time_scores_zero_with_a_reason(tmp_path):
    write_notebook(TINY, tmp_path / "source" / "tiny.ipynb")
    write_notebook(solution_version(TINY), tmp_path / "in" / "ann" / "tiny.ipynb")
    [r] = grade_folder(tmp_path / "in", tmp_path / "source", tmp_path / "out", Limits(startup=0.01))
    assert (r.score, r.max_score) == (0, 3) and r.notes == ["could not run: the kernel did not start within 0.01 s"]
    assert all(why.startswith("not run (could not run") for _, _, _, why in r.tests)
