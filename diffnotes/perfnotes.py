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
    """One row per model per ``train_throughput`` record: machine, batch, precision, compile, parameters, img/s."""
    rows = []
    for r in records:
        res = r["results"]
        precision = "bf16" if res["bf16"] else "fp32"
        for name, m in res.items():
            if isinstance(m, dict) and "images_per_second" in m:
                rows.append([r["machine"], res["batch"], precision, "yes" if res["compile"] else "no", name,
                             f"{m['parameters'] / 1e6:.2f} M", f"{m['images_per_second']:,.0f}", r["date"]])
    header = ["machine", "batch", "precision", "compiled", "model", "parameters", "images/s", "date"]
    return markdown_table(header, rows)


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
