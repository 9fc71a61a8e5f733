"""Course assignments: student and solution versions of nbgrader-format notebooks, and an offline autograder.

An assignment is one *source* notebook in nbgrader's format: cells carry ``metadata["nbgrader"]``
(``grade_id``, ``solution``, ``grade``, ``points``, ``locked``, ``schema_version`` 3), solution regions sit
between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, hidden tests between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS``. From it:

- :mod:`~diffnotes.grading.versions` makes the student version (solutions replaced by a stub that raises
  ``NotImplementedError``, hidden tests removed) and the solution version (delimiters removed), as nbgrader's
  ``ClearSolutions`` and ``ClearHiddenTests`` preprocessors do, without nbgrader, its database or a server;
- :mod:`~diffnotes.grading.grader` grades a folder of submissions: it rebuilds each notebook from the source, taking
  only the student's solution cells, runs it in a fresh kernel with time limits (:mod:`~diffnotes.grading.execute`),
  and writes a score table and per-student feedback.

The command line (``python -m diffnotes.grading release|grade``) wraps both; the book's "For instructors" page says
how to use it. The package imports nothing else from ``diffnotes``: it is infrastructure, first in the layout.
"""

from diffnotes.grading.versions import solution_version, student_version

__all__ = ["solution_version", "student_version"]
