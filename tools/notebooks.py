"""Keep the committed notebooks lean: execute them in the quick profile and store only checked text outputs.

    python tools/notebooks.py refresh book/ch01_sums_of_gaussians.ipynb ...   # execute, then strip
    python tools/notebooks.py strip book/*.ipynb                              # strip only
    python tools/notebooks.py check book/*.ipynb                              # exit 1 if a notebook is not lean

A notebook is lean when no cell stores an image or HTML output, and only cells tagged ``nbval-check-output``
store outputs at all (plain text and streams): those are what nbval compares. The book build executes every
notebook afresh, so nothing is lost.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat

CHECK_TAG = "nbval-check-output"
TEXT_MIME = "text/plain"


def _lean_outputs(cell: nbformat.NotebookNode) -> list:
    if CHECK_TAG not in cell.get("metadata", {}).get("tags", []):
        return []
    kept = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            kept.append(output)
        elif output["output_type"] in ("execute_result", "display_data") and TEXT_MIME in output.get("data", {}):
            output["data"] = {TEXT_MIME: output["data"][TEXT_MIME]}
            output["metadata"] = {}
            kept.append(output)
    return kept


def strip(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.metadata.pop("execution", None)  # timestamps of the last run: noise in every diff
            cell.outputs = _lean_outputs(cell)
            if not cell.outputs:  # nbval skips cells that were never run; a kept output needs its count
                cell.execution_count = None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


def refresh(path: Path) -> None:
    from nbclient import NotebookClient

    os.environ["DIFFNOTES_PROFILE"] = "quick"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    strip(path)


def problems(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if CHECK_TAG not in cell.get("metadata", {}).get("tags", []):
                found.append(f"{path}: cell {index} stores an output but is not tagged {CHECK_TAG}")
            elif set(output.get("data", {})) - {TEXT_MIME}:
                found.append(f"{path}: cell {index} stores a non-text output {sorted(output['data'])}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("refresh", "strip", "check"):
        print(__doc__)
        return 2
    command, paths = argv[0], [Path(p) for p in argv[1:]]
    if command == "check":
        found = [line for path in paths for line in problems(path)]
        print("\n".join(found) or f"{len(paths)} notebooks are lean")
        return 1 if found else 0
    for path in paths:
        (refresh if command == "refresh" else strip)(path)
        print(f"{command}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
