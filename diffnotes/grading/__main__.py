"""The command line: ``python -m diffnotes.grading release|grade`` (see the book's "For instructors" page).

    python -m diffnotes.grading release [SOURCE] [--release DIR] [--solution DIR]
    python -m diffnotes.grading grade SUBMISSIONS [--source DIR] [--out DIR] [--timeout S] [--cell-timeout S] [--jobs N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diffnotes.grading.grader import Limits, grade_folder
from diffnotes.grading.versions import release


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit status (2 for bad arguments, with a message naming the argument)."""
    parser = argparse.ArgumentParser(prog="python -m diffnotes.grading", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{release,grade}")
    rel = commands.add_parser("release", help="write the student and solution versions of every source notebook")
    rel.add_argument("source", nargs="?", type=Path, default=Path("assignments/source"))
    rel.add_argument("--release", type=Path, default=Path("assignments/release"), help="student versions")
    rel.add_argument("--solution", type=Path, default=Path("assignments/solution"), help="solution versions")
    gr = commands.add_parser("grade", help="grade a folder of submissions: <SUBMISSIONS>/<student>/<assignment>.ipynb")
    gr.add_argument("submissions", type=Path)
    gr.add_argument("--source", type=Path, default=Path("assignments/source"))
    gr.add_argument("--out", type=Path, default=Path("assignments/graded"), help="grades.csv and feedback/")
    gr.add_argument("--timeout", type=float, default=Limits.timeout, help="seconds for a whole notebook, from its kernel's start")
    gr.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout, help="seconds for one cell")
    gr.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    args = parser.parse_args(argv)
    try:
        if args.command == "release":
            for path in release(args.source, args.release, args.solution):
                print(f"released {path.name}: {args.release / path.name} (student), {args.solution / path.name}")
            return 0
        results = grade_folder(args.submissions, args.source, args.out,
                               Limits(cell_timeout=args.cell_timeout, timeout=args.timeout), jobs=args.jobs)
    except ValueError as error:
        parser.error(str(error))
    for r in results:
        print(f"{r.student:>20} {r.assignment:<28} {r.score:g}/{r.max_score:g}")
    print(f"wrote {args.out / 'grades.csv'} and {args.out / 'feedback'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
