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
import re
import sys
from datetime import date
from pathlib import Path

import torch

from diffnotes.checks import one_of
from diffnotes.files import write_json

#: Where the benchmarks keep their records, ``benchmarks/results`` in a checkout of the repository.
RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def machine() -> str:
    """A one-line description of the hardware, for records: the GPU if CUDA is present, else the CPU and threads."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    threads = torch.get_num_threads()
    return f"{_cpu_name()}, {os.cpu_count()} cores, {threads} thread{'s' if threads != 1 else ''}"


def threads(description: str) -> int:
    """The thread count that a description of :func:`machine` names ("..., 2 cores, 1 thread"), also of several joined
    by "; " (a run resumed on other machines, :func:`diffnotes.checkpoints.trained_on`) when they all name the same.

    Raises:
        ValueError: if a part names no thread count (a GPU's description does not) or the parts name different ones.
    """
    counts = set()
    for part in description.split("; "):
        match = re.search(r", (\d+) threads?$", part)
        if match is None:
            raise ValueError(f"no thread count in the machine description {part!r}")
        counts.add(int(match.group(1)))
    if len(counts) > 1:
        raise ValueError(f"the machines of {description!r} ran different numbers of threads")
    return counts.pop()


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return f"{platform.processor() or platform.machine()} CPU"


def cpu_peak_flops() -> dict:
    """The CPU's peak floating-point rate, from its vector width, FMA units, cores and clock, with the method stated.

    fp32: cores (those PyTorch's threads use) x clock x lanes x 2 (a fused multiply-add is 2 operations) x 2 FMA units per core, with 16 fp32
    lanes for AVX-512 and 8 for AVX2 (server cores of both kinds issue two FMAs per cycle). bf16: with Intel AMX,
    cores x clock x 1,024 bf16 multiply-adds per cycle (one tile multiply unit, 16x32 by 32x16 per 16 cycles) x 2;
    without AMX, the fp32 figure. The clock is the nominal one in ``/proc/cpuinfo`` (turbo clocks run higher, and
    AVX-512 and AMX code lower, so the peak is an estimate within some tens of per cent). Returns ``{"fp32": FLOP/s,
    "bf16": FLOP/s, "cores", "clock_ghz", "fp32_per_cycle", "bf16_per_cycle", "method"}``.
    """
    flags, mhz = set(), 0.0
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":", 1)[1])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cores = min(cores, torch.get_num_threads())  # the cores PyTorch's threads can use
    lanes = 16 if "avx512f" in flags else 8 if "fma" in flags else 4
    fp32_per_cycle = lanes * 2 * 2
    bf16_per_cycle = 2048 if "amx_bf16" in flags else fp32_per_cycle
    ghz = mhz / 1000
    return {"fp32": cores * ghz * 1e9 * fp32_per_cycle, "bf16": cores * ghz * 1e9 * bf16_per_cycle, "cores": cores,
            "clock_ghz": ghz, "fp32_per_cycle": fp32_per_cycle, "bf16_per_cycle": bf16_per_cycle,
            "method": f"{cores} cores x {ghz:.2f} GHz (nominal, /proc/cpuinfo) x FLOP per cycle per core: fp32 {lanes} "
                      f"lanes x 2 (FMA) x 2 FMA units = {fp32_per_cycle}; bf16 "
                      + ("AMX 1,024 multiply-adds x 2 = 2,048" if "amx_bf16" in flags else "as fp32 (no AMX)")}


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


#: The kinds of machine that :func:`load_records` can keep to, ``cpu`` and ``gpu`` (a record measured with CUDA).
MACHINE_KINDS: tuple[str, ...] = ("cpu", "gpu")


def on_gpu(record: dict) -> bool:
    """Whether ``record`` was measured on a CUDA GPU (:func:`machine` names the CUDA version there)."""
    return "(CUDA " in record["machine"]


def load_records(kind: str, directory: str | Path = RESULTS_DIR, on: str | None = None) -> list[dict]:
    """Every record of benchmark ``kind`` in ``directory``, oldest first (by date, then file name); with ``on`` only
    those measured on that kind of machine (one of :data:`MACHINE_KINDS`), so that a page about the CPU keeps its
    numbers when GPU records join them.

    Raises:
        FileNotFoundError: if ``directory`` does not exist (the records live in a checkout, not in an installed
            package).
        ValueError: if ``on`` is not None or one of :data:`MACHINE_KINDS`.
    """
    if on is not None:
        one_of("on", on, MACHINE_KINDS, "a kind of machine")
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no benchmark records at {directory}: run the notes from a checkout of the repository")
    records = []
    for path in sorted(directory.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("kind") == kind and (on is None or on_gpu(record) == (on == "gpu")):
            records.append({**record, "file": path.name})
    return sorted(records, key=lambda r: (r["date"], r["file"]))


def take_turns(names, measure, rounds: int, unit: str = "") -> dict[str, list[float]]:
    """Call ``measure(name)`` (it measures one round of the run ``name`` and returns its number) for every name of
    ``names``, ``rounds`` times, the runs taking turns in the order A B, B A, A B, ..., so that a slow spell of a
    shared machine falls on all of them. Returns ``{name: [the number of each round]}``; prints each as it comes,
    followed by ``unit``."""
    names = list(names)
    measured: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            measured[name].append(measure(name))
            print(f"round {r + 1}: {name:24s} {measured[name][-1]:10.3f} {unit}", flush=True)
    return measured


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table; numbers are printed as they are given (round them first)."""
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row must have {len(header)} cells, like the header {header}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def throughput_table(records: list[dict]) -> str:
    """The images per second of ``train_throughput`` records: a table per machine, a row per run (batch size,
    precision, memory format, compiled or not) and a column per model, with its number of parameters in the header.
    Where a record kept several rounds, a cell shows their median and, in brackets, their range."""
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
        header = ["batch", "precision", "layout", "compiled",
                  *(f"{model} ({p / 1e6:.2f} M)" for model, p in models.items())]
        rows = [[res["batch"], "bf16" if res["bf16"] else "fp32",
                 LAYOUT_NAMES[res.get("memory_format", "contiguous_format")], "yes" if res["compile"] else "no",
                 *(_rate(res[model]) if model in res else "-" for model in models)]
                for res in (run["results"] for run in runs)]
        versions = ", ".join(sorted({run["torch"] for run in runs}))
        dates = ", ".join(sorted({run["date"] for run in runs}))
        blocks.append(f"Images per second on **{name}** (PyTorch {versions}; {dates}):\n\n" + markdown_table(header, rows))
    return "\n\n".join(blocks)


#: How the table names a record's memory format (records from before it was recorded ran in the default layout).
LAYOUT_NAMES = {"contiguous_format": "default", "channels_last": "channels-last"}


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


def first_point(points: list[dict], reached) -> dict | None:
    """The first point, by step, of a quality curve's ``points`` (a ``quality_curve`` record's) for which
    ``reached(point)`` holds; None if none does."""
    return next((p for p in sorted(points, key=lambda p: p["step"]) if reached(p)), None)


def curves_at_steps_table(curves: dict[str, dict], steps: list[int]) -> str:
    """The confident share of several runs' ``quality_curve`` records ({name: record}) at the same ``steps``, a row per
    run; a step a run did not reach (or did not measure) is left empty."""
    rows = []
    for name, record in curves.items():
        share = {p["step"]: p["report"]["confident_fraction"] for p in record["results"]["points"]}
        rows.append([name] + [f"{share[s]:.1%}" if s in share else "" for s in steps])
    return markdown_table(["recipe"] + [f"step {s:,}" for s in steps], rows)


def quality_curve_table(record: dict) -> str:
    """The checkpoints of a ``quality_curve`` record (``benchmarks/quality_curve.py``), a row each: step, training
    time, images seen, the confident share, the range of the class shares, the Frechet distance, whether the bar holds."""
    rows = []
    for p in sorted(record["results"]["points"], key=lambda p: p["step"]):
        report = p["report"]
        rows.append([f"{p['step']:,}", f"{p['training_seconds'] / 60:.0f}", f"{p['images_seen']:,}",
                     f"{report['confident_fraction']:.1%}",
                     f"{min(report['class_fractions']):.1%} to {max(report['class_fractions']):.1%}",
                     f"{report['frechet_distance']:.1f}", "**yes**" if p["meets_bar"] else "no"])
    header = ["step", "minutes", "images", "confident", "classes", "FD", "bar met"]
    return markdown_table(header, rows)
