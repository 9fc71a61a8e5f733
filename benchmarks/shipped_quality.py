"""The shipped digit model's quality by its full protocol: 1,000 DDIM samples of 50 steps, measured and compared with
the numbers its provenance file records (``diffnotes/weights/ddpm_digits.json``, ``quality``).

    python benchmarks/shipped_quality.py --out benchmarks/results/shipped_quality-cpu.json
    python benchmarks/shipped_quality.py --n 200 --steps 20      # another protocol: measured, not compared

This is the check the slow test ``tests/test_pretrained.py -m slow`` makes (about six minutes on one core of a 2-core
CPU); the default tests repeat the small golden run instead (``pretrained.golden_run``). The record holds the report,
the seconds it took, and whether it reproduces the recorded quality within the tolerance of the slow test.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import torch

from diffnotes import pretrained
from diffnotes.evaluation import quality
from diffnotes.perfnotes import new_record, write_record

#: How far a measurement by the recorded protocol may stray from the record on another CPU (the slow test's limits).
CONFIDENT_FRACTION_TOLERANCE = 0.01  # absolute
FRECHET_DISTANCE_TOLERANCE = 0.05  # relative


def reproduces(report: quality.QualityReport, recorded: dict) -> bool:
    """Whether ``report`` agrees with the provenance's ``quality`` record within the limits above."""
    return (
        abs(report.confident_fraction - recorded["confident_fraction"]) <= CONFIDENT_FRACTION_TOLERANCE
        and abs(report.frechet_distance - recorded["frechet_distance"])
        <= FRECHET_DISTANCE_TOLERANCE * recorded["frechet_distance"]
        and quality.meets_bar(report) == recorded["meets_bar"]
    )


def main(argv: list[str] | None = None) -> dict:
    protocol = pretrained.QUALITY_PROTOCOL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=protocol["n"], help="samples")
    parser.add_argument("--steps", type=int, default=protocol["steps"], help="DDIM steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="also write the numbers as a record")
    args = parser.parse_args(argv)
    chosen = {**protocol, "n": args.n, "steps": args.steps}
    start = time.perf_counter()
    report = pretrained.measure_quality(pretrained.load_digit_model(args.device), device=args.device, **chosen)
    seconds = time.perf_counter() - start
    recorded = pretrained.digits_provenance()["quality"]
    same = chosen == recorded["protocol"]
    results = {"protocol": chosen, "report": asdict(report), "seconds": round(seconds, 1),
               "threads": torch.get_num_threads(), "model_sha256": pretrained.DIGITS_SHA256,
               "reproduces_record": reproduces(report, recorded) if same else None}
    print(report)
    print(f"{seconds:.0f} s; reproduces the recorded quality: {results['reproduces_record']}")
    record = new_record("shipped_quality", results)
    if args.out:
        print("wrote", write_record(args.out, record))
    return record


if __name__ == "__main__":
    main()
