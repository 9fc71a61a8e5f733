"""Run one assembled notebook in a fresh kernel and report each code cell's outcome (the grader's child process).

The grader starts ``python -m diffnotes.grading.execute`` and writes one JSON job to its standard input:
``{"nonce", "notebook", "workdir", "cell_timeout", "max_output"}``. The notebook never touches the disk, so code
in it cannot read the hidden tests from a file. Each code cell runs in turn, whatever the previous ones did (as
nbclient's ``allow_errors``); a cell that passes ``cell_timeout`` seconds is interrupted and reported as timed
out. Every report is one line on standard output, ``<nonce> <json>``: ``{"event": "kernel", "pid"}`` once the
kernel runs, then ``{"event": "cell", "index", "status": "ok" | "error" | "timeout", "message"}`` per code cell,
then ``{"event": "done"}``, or ``{"event": "dead", "message"}`` if the kernel died. Lines without the nonce (which
the notebook's code never sees) are not reports. The kernel's own stdout and stderr are discarded, and a cell's
captured output stops at ``max_output`` characters, so a notebook that prints megabytes costs no memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

#: The error name reported for a cell that passed its time limit.
TIMEOUT_NAME = "CellTimeoutError"


def _report(nonce: str, **event: object) -> None:
    sys.stdout.write(f"{nonce} {json.dumps(event)}\n")
    sys.stdout.flush()


def _client_class():  # nbclient is imported here: only the child process needs it
    from nbclient import NotebookClient

    class CappedClient(NotebookClient):
        """An nbclient client that keeps at most ``max_output`` characters of each cell's output (errors always)."""

        def __init__(self, *args: object, max_output: int = 100_000, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.max_output, self._used = max_output, {}

        def output(self, outs, msg, display_id, cell_index):  # nbclient's signature
            size = len(json.dumps(msg.get("content", {})))
            used = self._used.get(cell_index, 0)
            self._used[cell_index] = used + size
            if msg["msg_type"] == "error" or used + size <= self.max_output:
                return super().output(outs, msg, display_id, cell_index)
            if used <= self.max_output:  # the first output past the cap leaves a note
                outs.append({"output_type": "stream", "name": "stderr", "text": "[output truncated by the grader]\n"})
            return None

    return CappedClient


def _error_of(cell: dict) -> str | None:
    """'Name: value' of the cell's error output, or None if it has none."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            name, value = out.get("ename", "Error"), out.get("evalue", "")
            return (f"{name}: {value}" if value else name)[:500]
    return None


def run(job: dict) -> None:
    """Execute ``job["notebook"]`` cell by cell and report on standard output (see the module docstring)."""
    import nbformat
    from nbclient.exceptions import DeadKernelError

    nonce, limit = job["nonce"], float(job["cell_timeout"])
    nb = nbformat.from_dict(job["notebook"])
    client_class = _client_class()
    client = client_class(nb, timeout=int(limit), allow_errors=True, interrupt_on_timeout=True,
                          error_on_timeout={"ename": TIMEOUT_NAME, "evalue": f"the cell passed {limit:g} s"},
                          kernel_name="python3", resources={"metadata": {"path": job["workdir"]}},
                          max_output=int(job["max_output"]))
    with client.setup_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL):
        _report(nonce, event="kernel", pid=getattr(client.km.provisioner, "pid", None))
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            start = time.monotonic()
            try:
                client.execute_cell(cell, index)
            except DeadKernelError as error:
                _report(nonce, event="dead", index=index, message=f"the kernel died: {error}")
                return
            error = _error_of(cell)
            if time.monotonic() - start >= limit:
                status, error = "timeout", f"timed out: the cell passed its limit of {limit:g} s"
            else:
                status = "error" if error else "ok"
            _report(nonce, event="cell", index=index, status=status, message=error or "")
    _report(nonce, event="done")


if __name__ == "__main__":
    run(json.loads(sys.stdin.read()))
