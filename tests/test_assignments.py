"""The course assignments (``assignments/source/``): their format, their versions, and their grades.

One call of the grader runs every solution version (full marks, within the time limit), every student version
(zero: each stub raises NotImplementedError) and a wrong-on-purpose submission (partial marks).
"""

import json
import re
from pathlib import Path

import nbformat
import pytest

from diffnotes.grading.grader import Limits, grade_folder
from diffnotes.grading.versions import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    END_HIDDEN,
    END_SOLUTION,
    graded_tests,
    is_solution,
    read_notebook,
    release,
    source_text,
)

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "assignments" / "source"
NAMES = sorted(p.stem for p in SOURCE.glob("*.ipynb"))
PARTS = {"I", "II", "III", "IV", "V"}


def regions(text: str, begin: str, end: str) -> list[str]:
    """The non-blank lines strictly inside each begin ... end region of ``text``."""
    found, inside = [], False
    for line in text.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside and line.strip():
            found.append(line.strip())
    return found


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("released")
    release(SOURCE, out / "release", out / "solution")
    return out


def test_one_assignment_per_part_and_six_in_all():
    parts = [read_notebook(SOURCE / f"{n}.ipynb")["metadata"]["diffnotes_assignment"]["part"] for n in NAMES]
    assert len(NAMES) >= 6 and set(parts) == PARTS, parts


@pytest.mark.parametrize("name", NAMES)
def test_header_states_goals_chapters_time_and_points(name):
    nb = read_notebook(SOURCE / f"{name}.ipynb")
    info, header = nb["metadata"]["diffnotes_assignment"], source_text(nb["cells"][0])
    points = sum(p for _, p in graded_tests(nb))
    assert header.startswith(f"# {info['title']}") and f"{points:g} points" in header
    assert f"about {info['minutes']} minutes" in header and len(info["goals"]) >= 2
    assert all(goal in header for goal in info["goals"])
    assert all(re.search(rf"\b{c} \(", header) for c in info["chapters"])


@pytest.mark.parametrize("name", NAMES)
def test_student_version_has_no_solution_and_no_hidden_test(name, released):
    source = read_notebook(SOURCE / f"{name}.ipynb")
    student = read_notebook(released / "release" / f"{name}.ipynb")
    nbformat.validate(nbformat.from_dict(student))
    nbformat.validate(nbformat.from_dict(read_notebook(released / "solution" / f"{name}.ipynb")))
    text = "\n".join(source_text(c) for c in student["cells"])
    secret = [line for c in source["cells"] for line in regions(source_text(c), BEGIN_SOLUTION, END_SOLUTION)
              + regions(source_text(c), BEGIN_HIDDEN, END_HIDDEN)]
    assert secret, "every assignment has solutions to hide"
    student_lines = {line.strip() for line in text.split("\n")}
    leaked = [line for line in secret if line in student_lines]
    assert not leaked, f"the student version of {name} shows {leaked}"
    assert "BEGIN" not in text and "END SOLUTION" not in text and "HIDDEN" not in text
    stubs = sum(source_text(c).count("raise NotImplementedError()") for c in student["cells"] if is_solution(c))
    assert stubs == sum(source_text(c).count(BEGIN_SOLUTION) for c in source["cells"])


def wrong_kernel(released: Path) -> dict:
    """Assignment 1 with a kernel that ignores a tensor of timesteps: only the hidden part of one test catches it."""
    nb = read_notebook(released / "solution" / "a1_diffusion_kernel.ipynb")
    [cell] = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "kernel"]
    right = "    if ab.dim() == 1:\n        ab = ab[:, None]  # (B, 1): one timestep per row\n"
    assert right in cell["source"]
    cell["source"] = cell["source"].replace(right, "")
    return nb


def test_solutions_score_full_marks_students_zero_and_a_wrong_answer_part(released, tmp_path):
    submitted = tmp_path / "submitted"
    for name in NAMES:
        for who, folder in (("solution", "solution"), ("student", "release")):
            target = submitted / who / name / f"{name}.ipynb"  # nbgrader's submitted/<student>/<assignment>/ layout
            target.parent.mkdir(parents=True)
            target.write_text((released / folder / f"{name}.ipynb").read_text())
    (submitted / "wrong").mkdir()
    (submitted / "wrong" / "a1_diffusion_kernel.ipynb").write_text(json.dumps(wrong_kernel(released)))
    results = grade_folder(submitted, SOURCE, tmp_path / "graded", Limits(cell_timeout=120, timeout=120, startup=600), jobs=2)
    by = {(r.student, r.assignment): r for r in results}
    assert len(results) == 2 * len(NAMES) + 1
    for name in NAMES:
        solution, student = by["solution", name], by["student", name]
        assert solution.score == solution.max_score > 0 and not solution.notes, (name, solution)
        assert solution.seconds < 120, f"{name}'s solution ran {solution.seconds:.0f} s"  # its kernel's start aside
        assert student.score == 0 and student.max_score == solution.max_score, (name, student)
        assert all("NotImplementedError" in why for _, _, _, why in student.tests), (name, student.tests)
        assert all("NotImplementedError" in n for n in student.notes), (name, student.notes)  # nothing else failed
    wrong = by["wrong", "a1_diffusion_kernel"]
    failed = [(g, why) for g, earned, _, why in wrong.tests if earned == 0]
    assert (wrong.score, wrong.max_score) == (8, 10) and [g for g, _ in failed] == ["test_kernel"], wrong
    assert failed[0][1].startswith("RuntimeError")
    table = (tmp_path / "graded" / "grades.csv").read_text()
    assert "solution,a6_ddim,10,10," in table and "wrong,a1_diffusion_kernel,8,10," in table


@pytest.mark.parametrize("name", NAMES)
def test_the_instructor_page_lists_every_assignment(name):
    """The table of book/instructors.md agrees with each notebook's part, chapters, time and points."""
    nb = read_notebook(SOURCE / f"{name}.ipynb")
    info = nb["metadata"]["diffnotes_assignment"]
    [row] = [r for r in (ROOT / "book" / "instructors.md").read_text().splitlines() if r.startswith(f"| `{name}` |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == info["part"] and cells[3] == f"{info['minutes']} min"
    assert cells[4] == f"{sum(p for _, p in graded_tests(nb)):g}"
    assert re.findall(r"\[(\d+)\]", cells[2]) == [str(c) for c in info["chapters"]]


@pytest.mark.parametrize("name", NAMES)
def test_each_task_states_the_points_of_its_tests(name):
    """A heading "## Task k: ... (n points)" announces the points of the test cells up to the next task."""
    declared, counted = [], []
    for cell in read_notebook(SOURCE / f"{name}.ipynb")["cells"]:
        heading = re.match(r"## Task \d+: .*\((\d+) points?\)", source_text(cell))
        if heading and cell["cell_type"] == "markdown":
            declared.append(float(heading.group(1)))
            counted.append(0.0)
        elif cell["metadata"].get("nbgrader", {}).get("grade") and counted:
            counted[-1] += cell["metadata"]["nbgrader"]["points"]
    assert declared and declared == counted
