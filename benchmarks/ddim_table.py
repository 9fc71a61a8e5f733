"""Song et al.'s Table 1 for the book's shipped digit model: sample quality against DDIM steps S and eta.

    python benchmarks/ddim_table.py --n 300 --steps 10 20 50 100 --out benchmarks/results/ddim_table-cpu.json
    python benchmarks/ddim_table.py --n 1000 --steps 10 20 50 100 1000 --out benchmarks/results/ddim_table-gpu.json
    python benchmarks/ddim_table.py --merge old.json part-1.json part-2.json --out benchmarks/results/ddim_table-cpu.json

Every cell samples the same ``n`` noises (seed ``--seed``) with :func:`diffnotes.evaluation.table.quality_table` and measures them
with Part II's measure against the 5,000 training digits; the yardstick is the Frechet distance of ``n`` real digits
against the other 5,000 - n. Chapter 12 shows the newest record. A benchmark, not a test: it asserts nothing.

A table can be measured in parts, a few cells each (on the cores of one machine, or over several sessions), and the
parts joined with ``--merge``. Every cell depends only on the seed, ``n`` and the batch size, not on which other cells
the run measured, so a merged table equals the table measured in one run, up to the timings.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from diffnotes import pretrained
from diffnotes.data import load_mnist_5k
from diffnotes.evaluation import quality, table
from diffnotes.perfnotes import new_record, write_record
from diffnotes.runtime import get_device

#: What the parts of a merged table must share.
SHARED = ("n", "seed", "batch", "model_sha256", "real_digits_fd")


def merge(records: list[dict]) -> dict:
    """Join the cells of several ``ddim_table`` records of the same model, sample count, seed and batch size.

    Raises:
        ValueError: if a record is not a ``ddim_table`` record, if the records differ in one of :data:`SHARED`, or if
            two of them measured the same cell (eta, S).
    """
    for record in records:
        if record.get("kind") != "ddim_table":
            raise ValueError(f"records must be ddim_table records, got kind {record.get('kind')!r}")
    for key in SHARED:
        values = {record["results"][key] for record in records}
        if len(values) != 1:
            raise ValueError(f"the records to merge must share {key}, got {sorted(values)}")
    cells = [cell for record in records for cell in record["results"]["cells"]]
    keys = [(cell["eta"], cell["steps"]) for cell in cells]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"the records to merge measured the same cells (eta, S) more than once: {repeated}")
    first = records[0]["results"]
    parts = [{key: record[key] for key in ("command", "machine", "date")} | {"seconds": record["results"]["seconds"]}
             for record in records]
    results = {key: first[key] for key in SHARED} | {
        "seconds": round(sum(part["seconds"] for part in parts), 1),
        "cells": sorted(cells, key=lambda cell: (cell["eta"], cell["steps"])),
        "parts": parts,
    }
    merged = new_record("ddim_table", results)
    machines = sorted({record["machine"] for record in records})
    merged["machine"] = machines[0] if len(machines) == 1 else "; ".join(machines)
    merged["date"] = max(record["date"] for record in records)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="samples per cell")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 100, 1000])
    parser.add_argument("--etas", type=float, nargs="+", default=[0.0, 0.2, 0.5, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=None, help="also write the table as a record")
    parser.add_argument("--merge", nargs="+", metavar="RECORD", default=None,
                        help="measure nothing: join the cells of these records into one (written to --out)")
    args = parser.parse_args()
    if args.merge:
        merged = merge([json.loads(Path(path).read_text()) for path in args.merge])
        print(f"{len(merged['results']['cells'])} cells from {len(args.merge)} records")
        if args.out:
            print("wrote", write_record(args.out, merged))
        return
    device = get_device(args.device)
    model = pretrained.load_digit_model(device)
    images, _ = load_mnist_5k()
    start = time.time()
    cells = table.quality_table(model, pretrained.digits_schedule(), args.steps, args.etas, args.n, images,
                               torch.Generator().manual_seed(args.seed), args.batch, device)
    (floor,) = quality.real_fd_spread(images, args.n, 1, torch.Generator().manual_seed(args.seed + 1))
    for cell in cells:
        print(f"eta {cell.eta:.1f}  S {cell.steps:5d}  {1e3 * cell.seconds_per_image:8.1f} ms/image  {cell.report}")
    print(f"real digits: FD {floor:.2f}; {time.time() - start:.0f} s in all")
    results = {"n": args.n, "seed": args.seed, "batch": args.batch, "model_sha256": pretrained.DIGITS_SHA256,
               "real_digits_fd": floor, "seconds": round(time.time() - start, 1),
               "cells": [asdict(cell) for cell in cells]}
    if args.out:
        print("wrote", write_record(args.out, new_record("ddim_table", results)))


if __name__ == "__main__":
    main()
