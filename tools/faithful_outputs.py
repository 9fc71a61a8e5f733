"""A Sphinx extension of the book's build: the notebooks myst-nb writes to ``_build/jupyter_execute/`` hold what the
kernel printed.

``tests/test_notebook_outputs.py`` compares those executed notebooks with the committed outputs as nbval would, so
they must hold the outputs of the execution, unaltered. myst-nb (1.4) misses this twice; this extension mends both:

* It merges the stream outputs of a cell for display (``nb_merge_streams: true``, which keeps a tqdm bar in one
  block) by appending the later streams' text to the first stream *in place*, with the ends of the lines stripped;
  the notebook it then writes holds the merged text and the later streams again, and has lost trailing spaces. With
  this extension myst-nb merges copies of the outputs. The pages look the same.
* In cache mode (``execute_notebooks: cache``; ``make book`` fills the cache first, see
  ``tools/execute_notebooks.py``), when it finds the notebook in the cache, it renders the page from a merged copy
  (the cached code cells with their outputs) but writes the notebook it was given, without outputs. With this
  extension the cached outputs are merged into that notebook itself, as an execution in ``force`` mode leaves them.
"""

from __future__ import annotations

import copy

from myst_nb.core import render
from myst_nb.core.execute.cache import NotebookClientCache

_merge = render.coalesce_streams
_start_cached = NotebookClientCache.start_client


def coalesce_copies(outputs: list) -> list:
    """myst-nb's stream merging applied to copies of ``outputs``, which stay as they were."""
    return _merge([copy.deepcopy(output) for output in outputs])


def start_client_in_place(client: NotebookClientCache) -> None:
    """myst-nb's cache client, which then leaves the cached outputs in the notebook it was given (the one myst-nb
    writes to ``_build/jupyter_execute/``), rather than in a copy."""
    given = client.notebook
    _start_cached(client)
    merged = client.notebook
    if merged is not given:  # found in the cache (an execution by the client itself fills ``given``)
        given.clear()
        given.update(merged)
        client._notebook = given


def setup(app) -> dict:
    render.coalesce_streams = coalesce_copies  # looked up there, by name, each time a cell's outputs are rendered
    NotebookClientCache.start_client = start_client_in_place  # called when myst-nb opens the client of a notebook
    return {"parallel_read_safe": True, "parallel_write_safe": True}
