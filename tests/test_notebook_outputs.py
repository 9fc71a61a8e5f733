"""The notebooks' checked outputs, compared where the book build executed them (needs ``make book``).

The book build executes every notebook once and writes the executed copy to ``_build/jupyter_execute/book/``. For
every notebook under ``book/`` this test reads that copy and checks what ``pytest --nbval-lax book/`` checks while
running the notebook itself: every code cell ran, none raised, and every cell tagged ``nbval-check-output`` gave the
outputs stored in the committed notebook, compared by nbval's own code (``IPyNbCell.compare_outputs``, streams
coalesced) after the substitutions of ``tests/nbval_sanitize.cfg``. So ``make test`` executes each notebook once, in
the build. It fails if a notebook was not built, or was built before its last change or before a change of the
package, its weights or the benchmark records the notebooks read: build the book again (``make book``).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import IPyNbFile, coalesce_streams, get_sanitize_patterns

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
# Another built copy can be checked with DIFFNOTES_BOOK_BUILD=path/to/_build (as the browser test reads it).
EXECUTED = Path(os.environ.get("DIFFNOTES_BOOK_BUILD", ROOT / "_build")) / "jupyter_execute"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def build_inputs(notebook: Path) -> list[Path]:
    """The files a built notebook must be newer than: itself, the package's sources and weights, the records."""
    package = ROOT / "diffnotes"
    return [notebook, *package.rglob("*.py"), *(package / "weights").glob("*"),
            *(ROOT / "benchmarks" / "results").glob("*.json")]


def nbval_cells(notebook: Path, session: pytest.Session) -> list:
    """nbval's test items for the code cells of ``notebook``, collected as ``--nbval-lax`` collects them (only tagged
    cells are compared), with the sanitizer's patterns loaded; they are compared here, never run."""
    collector = IPyNbFile.from_parent(session, path=notebook)
    collector.compare_outputs = False  # --nbval-lax
    collector.sanitize_patterns.update(get_sanitize_patterns(SANITIZE.read_text()))
    return list(collector.collect())


def problems(notebook: Path, built: nbformat.NotebookNode, session: pytest.Session) -> list[str]:
    """What nbval would report for ``notebook`` if its cells gave the outputs of ``built``."""
    cells = nbval_cells(notebook, session)
    ran = [cell for cell in built.cells if cell.cell_type == "code"]
    if [item.cell.source for item in cells] != [cell.source for cell in ran]:
        return ["the built notebook holds other code than the notebook: build the book again"]
    found = []
    for item, cell in zip(cells, ran):
        where = f"{notebook.name} cell {item.cell_num}"
        if item.options["skip"]:
            continue
        errors = [out for out in cell.outputs if out.output_type == "error"]
        if errors and not item.options["check_exception"]:
            found.append(f"{where} raised {errors[0].ename}: {errors[0].evalue}")
        if cell.execution_count is None and cell.source.strip():
            found.append(f"{where} was not executed by the build")
        unrun = item.cell.execution_count is None
        if unrun and item.cell.outputs:
            found.append(f"{where}: unrun reference cell has outputs")
        compared = item.options["check"] and not unrun
        if compared and not item.compare_outputs(coalesce_streams(cell.outputs), coalesce_streams(item.cell.outputs)):
            found.append(f"{where}: cell outputs differ\n" + "\n".join(item.comparison_traceback))
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_the_build_gave_the_checked_outputs(notebook, request):
    built_path = EXECUTED / "book" / notebook.name
    assert built_path.exists(), f"{built_path} is missing: build the book (make book)"
    built_at = built_path.stat().st_mtime
    newer = [str(path.relative_to(ROOT)) for path in build_inputs(notebook) if path.stat().st_mtime > built_at]
    assert not newer, f"{built_path.name} was built before a change of {newer[:5]}: build the book again (make book)"
    found = problems(notebook, nbformat.read(built_path, as_version=4), request.session)
    assert not found, "\n\n".join(found)


def test_the_comparison_catches_a_changed_output(request, tmp_path):
    """nbval's comparison, as called here, fails on a checked output that differs beyond the sanitizer, and only
    there: a changed timing passes, a changed number fails, an unchecked cell may print anything."""
    source = "print('loss 0.25 after 3.2 s')"
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(source, metadata={"tags": ["nbval-check-output"]}, execution_count=1, outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="loss 0.25 after 3.2 s\n")]),
        nbformat.v4.new_code_cell("print(1)", execution_count=2),
    ])
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)

    def built(first: str, second: str = "1\n", error: bool = False) -> nbformat.NotebookNode:
        copy = nbformat.read(path, as_version=4)
        copy.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=first)]
        copy.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=second)]
        if error:
            copy.cells[1].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="x", traceback=[]))
        return copy

    assert problems(path, built("loss 0.25 after 41 s\n", "2\n"), request.session) == []
    (found,) = problems(path, built("loss 0.26 after 3.2 s\n"), request.session)
    assert "cell 0: cell outputs differ" in found and "0.26" in found
    assert problems(path, built("loss 0.25 after 3.2 s\n", error=True), request.session) == [
        "tiny.ipynb cell 1 raised ValueError: x"]


def test_the_build_merges_streams_without_altering_the_notebook():
    """tools/faithful_outputs.py, which the book's _config.yml loads, leaves the outputs it merges as they were."""
    import importlib.util

    from myst_nb.core import render

    spec = importlib.util.spec_from_file_location("faithful_outputs", ROOT / "tools" / "faithful_outputs.py")
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    assert "faithful_outputs" in (ROOT / "_config.yml").read_text()
    outputs = [nbformat.v4.new_output("stream", name="stdout", text=text) for text in ("a  \n", "b\n")]
    merged = extension.coalesce_copies(outputs)
    assert [o.text for o in merged] == ["a\nb\n"] and [o.text for o in outputs] == ["a  \n", "b\n"]
    from myst_nb.core.execute.cache import NotebookClientCache

    original, original_start = render.coalesce_streams, NotebookClientCache.start_client
    try:
        extension.setup(None)
        assert render.coalesce_streams is extension.coalesce_copies
        assert NotebookClientCache.start_client is extension.start_client_in_place
    finally:
        render.coalesce_streams, NotebookClientCache.start_client = original, original_start


def uncaptioned_figures(notebook: nbformat.NotebookNode) -> list[int]:
    """The code cells of an executed notebook that show an image on the page without a caption: every figure has a
    numbered caption, set in the cell's metadata (``mystnb: figure: caption``), which myst-nb renders as a numbered
    figure. A cell whose output is hidden (``remove-cell``, ``remove-output``) shows nothing."""
    found = []
    for i, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        if {"remove-cell", "remove-output"} & set(cell.metadata.get("tags", [])):
            continue
        images = [out for out in cell.get("outputs", []) if any(k.startswith("image/") for k in out.get("data", {}))]
        if images and not cell.metadata.get("mystnb", {}).get("figure", {}).get("caption"):
            found.append(i)
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_every_figure_has_a_caption(notebook):
    built_path = EXECUTED / "book" / notebook.name
    assert built_path.exists(), f"{built_path} is missing: build the book (make book)"
    found = uncaptioned_figures(nbformat.read(built_path, as_version=4))
    assert not found, f"{notebook.name}: the code cells {found} (counting code cells from 0) show a figure without a " \
                      "caption; give each a mystnb.figure.caption in its metadata"


def test_an_uncaptioned_figure_is_found():
    image = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    caption = {"mystnb": {"figure": {"caption": "A figure."}}}
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A page"),
        nbformat.v4.new_code_cell("plot()", outputs=[image]),
        nbformat.v4.new_code_cell("plot()", outputs=[image], metadata=caption),
        nbformat.v4.new_code_cell("plot()", outputs=[image], metadata={"tags": ["remove-output"]}),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")]),
    ])
    assert uncaptioned_figures(notebook) == [0]
