"""Run one assembled notebook in a fresh kernel, with time limits, and collect each code cell's outcome.

Two processes share this module. :func:`execute`, in the grader, starts ``python -m diffnotes.grading.execute``
in its own session and in an empty temporary folder, and writes one JSON job to its standard input:
``{"nonce", "notebook", "workdir", "cell_timeout", "max_output"}``. The notebook never touches the disk, so code
in it cannot read the hidden tests from a file. The child (:func:`run`) starts a kernel and runs each code cell
in turn, whatever the previous ones did (as nbclient's ``allow_errors``); a cell that passes ``cell_timeout``
seconds is interrupted and reported as timed out. Every report is one line on standard output, ``<nonce> <json>``:
``{"event": "kernel", "pid"}`` once the kernel runs, then ``{"event": "cell", "index", "status", "message"}``
per code cell (status ``"ok"``, ``"error"`` or ``"timeout"``), then ``{"event": "done"}``, or
``{"event": "dead", "message"}`` if the kernel died. Lines without the nonce (which the notebook's code never
sees) are not reports. The kernel's own stdout and stderr are discarded, and a cell's captured output stops at
``max_output`` characters, so a notebook that prints megabytes costs no memory. The grader counts the notebook's
time limit from the kernel's report, and past it kills the child's process group and the kernel's.
"""
from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: The error name reported for a cell that passed its time limit.
TIMEOUT_NAME = "CellTimeoutError"

#: The package's folder on sys.path, so that the kernel imports this very package from its empty folder.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Limits:
    """Time and output limits of one submission: seconds per cell, seconds for the whole notebook (counted from the
    moment its kernel runs, so that a busy machine's slow start costs the student nothing), seconds allowed for the
    kernel to start, and characters of output kept per cell."""

    cell_timeout: float = 120.0
    timeout: float = 300.0
    startup: float = 300.0
    max_output: int = 100_000

    def __post_init__(self) -> None:
        for name in ("cell_timeout", "timeout", "startup", "max_output"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


def _environment() -> dict[str, str]:
    """The kernel's environment: the quick profile, on the CPU (no GPU visible), one thread, no windows."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env.update(DIFFNOTES_PROFILE="quick", DIFFNOTES_DEVICE="cpu", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1",
               MPLBACKEND="Agg", PYTHONPATH=f"{PACKAGE_ROOT}{os.pathsep}{path}" if path else str(PACKAGE_ROOT))
    return env


def _kill_group(pid: int | None) -> None:
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _reports(proc: subprocess.Popen, nonce: str, limits: Limits) -> tuple[list[dict], str, float]:
    """The runner's reports as they come, until it ends or passes a limit (then its process group is killed), a note
    on how it ended ("" if it did), and the seconds the notebook ran once its kernel had started."""
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    events, deadline, ending, started = [], time.monotonic() + limits.startup, "", None
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            _kill_group(proc.pid)
            ending = (f"timed out: the notebook passed its limit of {limits.timeout:g} s and was stopped"
                      if started is not None else f"could not run: the kernel did not start within {limits.startup:g} s")
            break
        if line is None:
            break
        if line.startswith(nonce + " "):
            events.append(json.loads(line[len(nonce) + 1:]))
            if events[-1]["event"] == "kernel":
                started = time.monotonic()
                deadline = started + limits.timeout
    seconds = time.monotonic() - started if started is not None else 0.0
    proc.wait()
    return events, ending, seconds


def execute(nb: dict, limits: Limits) -> tuple[dict[int, tuple[str, str]], str, float]:
    """Run ``nb`` in a child process; return {cell index: (status, message)}, a note on how the run ended ("done"
    if it did) and the seconds the notebook ran, its kernel's start excluded."""
    nonce = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="diffnotes-grade-", ignore_cleanup_errors=True) as workdir:
        job = json.dumps({"nonce": nonce, "notebook": nb, "workdir": workdir,
                          "cell_timeout": limits.cell_timeout, "max_output": limits.max_output})
        proc = subprocess.Popen([sys.executable, "-m", "diffnotes.grading.execute"], cwd=workdir, env=_environment(),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True, text=True)
        with proc.stdin:  # the runner reads all of it before it reports anything
            proc.stdin.write(job)
        events, ending, seconds = _reports(proc, nonce, limits)
        cells, kernel = {}, None
        for event in events:
            if event["event"] == "kernel":
                kernel = event.get("pid")
            elif event["event"] == "cell":
                cells[event["index"]] = (event["status"], event["message"])
            elif event["event"] == "dead":
                ending = event["message"]
            elif event["event"] == "done":
                ending = ending or "done"
        if ending != "done":
            _kill_group(kernel)  # the kernel runs in its own session: stop it, and whatever it started, before cleanup
    return cells, ending or f"could not run: the runner stopped with code {proc.returncode}", seconds




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
