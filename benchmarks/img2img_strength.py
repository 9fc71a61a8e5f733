"""img2img's trade-off measured: faithfulness to a crude drawing against realism, over the strength.

    python benchmarks/img2img_strength.py --out benchmarks/results/img2img_strength-cpu.json

The ten stroke drawings of :func:`diffnotes.prompt_quality.stroke_drawings` are altered ``--repeats`` times each
with the prompt of their own digit, and again with the prompt of the next digit (a 3 asked to become a 4), by the shipped text-to-digit pipeline at each strength of
:data:`diffnotes.prompt_quality.STRENGTHS` (50 DDIM steps, guidance scale ``--guidance-scale``), and
:func:`diffnotes.prompt_quality.strength_report` measures the distance to the drawing and the realism of the
results. The chapter "Ways to use it" plots the record. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import torch

from diffnotes.data import load_mnist_5k
from diffnotes.perfnotes import new_record, write_record
from diffnotes.pipeline import load_shipped_pipeline, text_provenance
from diffnotes.prompt_quality import STRENGTHS, real_reference, strength_report, stroke_drawings


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance-scale", type=float, default=3.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    pipe = load_shipped_pipeline()
    images, labels = load_mnist_5k()
    reference = real_reference(images, labels)
    digits = torch.arange(10)
    drawings = stroke_drawings(digits.tolist())
    series = {"own digit": digits, "next digit": (digits + 1) % 10}
    records = {name: [] for name in series}
    for strength in STRENGTHS:
        for name, asked in series.items():
            start = time.time()
            r = strength_report(pipe, strength, drawings, asked, reference, args.repeats, args.guidance_scale,
                                args.steps)
            r["seconds"] = round(time.time() - start, 1)
            records[name].append(r)
            print(f"{name:10s} strength {strength:.1f}  RMS distance {r['rms_distance']:.3f}  read {r['read']:.1%}  "
                  f"confident {r['confident']:.1%}  FD {r['fd']:.1f}", flush=True)
    record = new_record("img2img_strength", {
        "series": records, "repeats": args.repeats, "steps": args.steps, "guidance_scale": args.guidance_scale,
        "model_sha256": text_provenance()["sha256"], "inputs": "diffnotes.prompt_quality.stroke_drawings(range(10))"})
    if args.out:
        print("wrote", write_record(args.out, record))
    return record


if __name__ == "__main__":
    main()
