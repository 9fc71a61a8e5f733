"""Performance notes (the appendix "Performance notes"): measured numbers, kept as records with their machine.

A benchmark under ``benchmarks/`` writes one JSON record per run (:func:`write_record`): what it measured, the
command that measured it, the machine, the PyTorch version and the date. The appendix reads the records
(:func:`load_records`) and shows them as tables (:func:`markdown_table`), so every number in it names the machine
that gave it, and rerunning a benchmark updates the page.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import date
from pathlib import Path

import torch

from diffnotes.files import write_json

#: Where the benchmarks keep their records, ``benchmarks/results`` in a checkout of the repository.
RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def machine() -> str:
    """A one-line description of the hardware, for records: the GPU if CUDA is present, else the CPU and threads."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    threads = torch.get_num_threads()
    return f"{_cpu_name()}, {os.cpu_count()} cores, {threads} thread{'s' if threads != 1 else ''}"


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return f"{platform.processor() or platform.machine()} CPU"


def new_record(kind: str, results: dict) -> dict:
    """A record of one benchmark run: ``kind`` names the benchmark, ``results`` holds its numbers."""
    if not isinstance(kind, str) or not kind.isidentifier():
        raise ValueError(f"kind must be an identifier such as 'train_throughput', got {kind!r}")
    return {
        "kind": kind,
        "machine": machine(),
        "command": " ".join(["python", *sys.argv]),
        "torch": torch.__version__,
        "date": date.today().isoformat(),
        "results": results,
    }


def write_record(path: str | Path, record: dict) -> Path:
    """Write ``record`` as JSON to ``path`` atomically (:func:`diffnotes.files.write_json`); returns the path."""
    return write_json(path, record)


def load_records(kind: str, directory: str | Path = RESULTS_DIR) -> list[dict]:
    """Every record of benchmark ``kind`` in ``directory``, oldest first (by date, then file name).

    Raises:
        FileNotFoundError: if ``directory`` does not exist (the records live in a checkout, not in an installed
            package).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no benchmark records at {directory}: run the notes from a checkout of the repository")
    records = []
    for path in sorted(directory.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("kind") == kind:
            records.append({**record, "file": path.name})
    return sorted(records, key=lambda r: (r["date"], r["file"]))


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; numbers are printed as they are given (round them first)."""
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row must have {len(header)} cells, like the header {header}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def throughput_table(records: list[dict]) -> str:
    """The images per second of ``train_throughput`` records: a table per machine, a row per run (batch size,
    precision, compiled or not) and a column per model, with its number of parameters in the header. Where a record
    kept several rounds, a cell shows their median and, in brackets, their range."""
    by_machine: dict[str, list[dict]] = {}
    for record in records:
        by_machine.setdefault(record["machine"], []).append(record)
    blocks = []
    for name, runs in by_machine.items():
        models = {}  # model name -> parameters, in the order the runs list them
        for run in runs:
            for model, m in run["results"].items():
                if isinstance(m, dict) and "images_per_second" in m:
                    models.setdefault(model, m["parameters"])
        header = ["batch", "precision", "compiled", *(f"{model} ({p / 1e6:.2f} M)" for model, p in models.items())]
        rows = [[res["batch"], "bf16" if res["bf16"] else "fp32", "yes" if res["compile"] else "no",
                 *(_rate(res[model]) if model in res else "-" for model in models)]
                for res in (run["results"] for run in runs)]
        versions = ", ".join(sorted({run["torch"] for run in runs}))
        dates = ", ".join(sorted({run["date"] for run in runs}))
        blocks.append(f"Images per second on **{name}** (PyTorch {versions}; {dates}):\n\n" + markdown_table(header, rows))
    return "\n\n".join(blocks)


def _rate(measured: dict) -> str:
    rounds = measured.get("rounds", [])
    spread = f" ({min(rounds):,.0f}-{max(rounds):,.0f})" if len(rounds) > 1 else ""
    return f"{measured['images_per_second']:,.0f}{spread}"


def notebook_table(record: dict, limit: float = 60.0) -> str:
    """The quick-profile time of each notebook in a ``notebook_times`` record, against ``limit`` seconds."""
    rows = [[name, f"{s:.1f}", "yes" if s < limit else "**no**"] for name, s in record["results"]["seconds"].items()]
    return markdown_table(["notebook", "seconds", f"under {limit:.0f} s"], rows)


def training_table(provenance: dict) -> str:
    """How the shipped digit model was trained, from its provenance record: one row of steps, images and time."""
    config = provenance["train_config"]
    images = provenance["steps"] * config["batch_size"]
    seconds = provenance["seconds"]
    row = [f"{provenance['steps']:,}", config["batch_size"], f"{images:,}", f"{images / 5000:.0f}",
           f"{seconds / 3600:.2f}", f"{images / seconds:.0f}", provenance["device"]]
    return markdown_table(["steps", "batch", "images", "epochs of 5,000", "hours", "images/s", "machine"], [row])
