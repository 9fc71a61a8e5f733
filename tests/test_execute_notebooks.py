"""tools/execute_notebooks.py, which executes the book's notebooks several at a time into the jupyter-cache the book
build reads (``make book``), and tools/faithful_outputs.py's part in it: the build writes the cached outputs into
the executed copies that the tests compare."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "execute_notebooks.py"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook(*sources: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A page")])
    nb.cells += [nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)}) for source in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def executed_copy(nb: nbformat.NotebookNode, uri: str = "book/page.ipynb"):
    """A cache bundle of ``nb`` as if executed: each code cell counted and printing its number."""
    from jupyter_cache.base import CacheBundleIn

    nb = nbformat.from_dict(nb)
    for count, cell in enumerate((cell for cell in nb.cells if cell.cell_type == "code"), start=1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{count}  \n")]
    return CacheBundleIn(nb, uri, data={"execution_seconds": 1.5})


def test_longest_first_and_the_book_settings():
    tool = load("execute_notebooks")
    paths = [Path("book") / name for name in ("a.ipynb", "b.ipynb", "new.ipynb", "c.ipynb")]
    order = tool.longest_first(paths, {"a.ipynb": 3.0, "b.ipynb": 20.0, "c.ipynb": 3.0})
    assert [path.name for path in order] == ["new.ipynb", "b.ipynb", "a.ipynb", "c.ipynb"]
    times = tool.recorded_times(ROOT / "benchmarks" / "results" / "notebooks-cpu.json")
    assert times and all(name.endswith(".ipynb") for name in times)
    assert tool.recorded_times(ROOT / "no-such-record.json") == {}
    # the book is built from the cache, with the settings the script executes under
    config = (ROOT / "_config.yml").read_text()
    assert "execute_notebooks: cache" in config
    assert tool.execution_settings(ROOT / "_config.yml") == (1800, False)


def test_executes_in_parallel_caches_what_the_build_finds_and_fails_on_a_failing_cell(tmp_path):
    """Two notebooks at once, in their own folder; the good one is cached so that the build matches it (same code),
    the one whose hidden assert fails is not, and the script exits with 1; an old cache is emptied first."""
    from jupyter_cache import get_cache

    book = tmp_path / "book"
    book.mkdir()
    (book / "data.txt").write_text("42")
    good = notebook("import os\nprint(open('data.txt').read(), os.environ['OMP_NUM_THREADS'])", "6 * 7",
                    tags=("nbval-check-output",))
    bad = notebook("x = 1", "assert x == 2, 'hidden test'")
    nbformat.write(good, book / "good.ipynb")
    nbformat.write(bad, book / "bad.ipynb")
    cache_path = tmp_path / "_build" / ".jupyter_cache"
    stale = get_cache(str(cache_path))
    stale.cache_notebook_bundle(executed_copy(bad), check_validity=False)  # an old success of the failing code
    (tmp_path / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  timeout: 120\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--cache", str(cache_path), "--jobs", "2", "--config",
                           str(tmp_path / "_config.yml"), str(book / "good.ipynb"), str(book / "bad.ipynb")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED book/bad.ipynb" in done.stderr and "hidden test" in done.stderr
    assert "executed book/good.ipynb" in done.stdout
    cache = get_cache(str(cache_path))
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(book / "bad.ipynb", as_version=4))
    _, merged = cache.merge_match_into_notebook(nbformat.read(book / "good.ipynb", as_version=4))
    code = [cell for cell in merged.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == [1, 2]
    assert code[0].outputs[0].text == "42 1\n" and code[1].outputs[0].data["text/plain"] == "42"
    assert code[1].metadata.tags == ["nbval-check-output"]


def test_the_build_writes_the_cached_outputs_into_the_notebook_it_writes(tmp_path):
    """myst-nb's cache client, as tools/faithful_outputs.py leaves it, merges the cached outputs into the notebook
    object it was given (the one myst-nb then writes to _build/jupyter_execute/), not only into a copy."""
    from jupyter_cache import get_cache
    from myst_nb.core.config import NbParserConfig
    from myst_nb.core.execute import create_client
    from myst_nb.core.execute.cache import NotebookClientCache

    extension = load("faithful_outputs")
    source = notebook("print(1)", "print(2)", tags=("hide-input",))
    path = tmp_path / "page.ipynb"
    nbformat.write(source, path)
    cache_path = tmp_path / "cache"
    get_cache(str(cache_path)).cache_notebook_bundle(executed_copy(source, str(path)), check_validity=False)
    config = NbParserConfig(execution_mode="cache", execution_cache_path=str(cache_path))
    original = NotebookClientCache.start_client
    try:
        NotebookClientCache.start_client = extension.start_client_in_place
        given = nbformat.read(path, as_version=4)
        with create_client(given, str(path), config, logging.getLogger("test")) as client:
            assert client.notebook is given
        assert client.exec_metadata["method"] == "cache" and client.exec_metadata["runtime"] == 1.5
        code = [cell for cell in given.cells if cell.cell_type == "code"]
        assert [cell.outputs[0].text for cell in code] == ["1  \n", "2  \n"]
        assert [cell.execution_count for cell in code] == [1, 2] and code[0].metadata.tags == ["hide-input"]
        assert given.cells[0].source == "# A page" and [c.id for c in given.cells] == [c.id for c in source.cells]
    finally:
        NotebookClientCache.start_client = original
