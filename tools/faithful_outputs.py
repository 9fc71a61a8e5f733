"""A Sphinx extension of the book's build: myst-nb merges a cell's stream outputs without altering the notebook.

myst-nb (1.4) merges the stream outputs of a cell for display (``nb_merge_streams: true``, which keeps a tqdm bar in
one block) by appending the later streams' text to the first stream *in place*, with the ends of the lines stripped;
the notebook it then writes to ``_build/jupyter_execute/`` holds the merged text and the later streams again, and has
lost trailing spaces. ``tests/test_notebook_outputs.py`` compares those executed notebooks with the committed outputs
as nbval would, so they must hold what the kernel printed: with this extension myst-nb merges copies of the outputs.
The pages look the same.
"""

from __future__ import annotations

import copy

from myst_nb.core import render

_merge = render.coalesce_streams


def coalesce_copies(outputs: list) -> list:
    """myst-nb's stream merging applied to copies of ``outputs``, which stay as they were."""
    return _merge([copy.deepcopy(output) for output in outputs])


def setup(app) -> dict:
    render.coalesce_streams = coalesce_copies  # looked up there, by name, each time a cell's outputs are rendered
    return {"parallel_read_safe": True, "parallel_write_safe": True}
