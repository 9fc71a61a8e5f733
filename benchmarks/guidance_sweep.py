"""Classifier-free guidance measured: how the shipped text-to-digit model obeys its prompts at each guidance scale.

    python benchmarks/guidance_sweep.py --out benchmarks/results/guidance_sweep-cpu.json

For each w of :data:`diffnotes.prompt_quality.GUIDANCE_SCALES`, :func:`diffnotes.prompt_quality.prompt_report`
draws ``--per-digit`` samples of each prompt "a {digit}" and ``--per-attribute`` of each prompt "a {word} {digit}"
(six attribute words, ten digits) with 50 DDIM steps, and measures the share read as the requested digit, the share
of attributes obeyed (chance 1/3), the FD against the 5,000 real digits and the within-class spread. The same
seeds at every w. The chapter "Text guidance" plots the record. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import time

from diffnotes.data import load_mnist_5k
from diffnotes.perfnotes import new_record, write_record
from diffnotes.pipeline import load_shipped_pipeline, text_provenance
from diffnotes.prompt_quality import GUIDANCE_SCALES, best_scale, prompt_report, real_reference


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-digit", type=int, default=100)
    parser.add_argument("--per-attribute", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--scales", type=float, nargs="+", default=list(GUIDANCE_SCALES))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    pipe = load_shipped_pipeline()
    provenance = text_provenance()
    images, labels = load_mnist_5k()
    reference = real_reference(images, labels)
    records = []
    for w in args.scales:
        start = time.time()
        r = prompt_report(pipe, w, reference, provenance["caption_thresholds"], args.per_digit, args.per_attribute,
                          args.steps)
        r["seconds"] = round(time.time() - start, 1)
        records.append(r)
        print(f"w={w:5.1f}  read {r['read']:.1%}  confident {r['confident']:.1%}  attributes {r['attribute_mean']:.1%}"
              f"  FD {r['fd']:.1f}  spread {r['spread']:.2f}  ({r['seconds']:.0f} s)", flush=True)
    best = best_scale(records)
    print(f"best w = {best['guidance_scale']}: {best['read']:.1%} read as the requested digit")
    record = new_record("guidance_sweep", {
        "scales": records, "best_guidance_scale": best["guidance_scale"], "best_read": best["read"],
        "per_digit": args.per_digit, "per_attribute": args.per_attribute, "steps": args.steps,
        "model_sha256": provenance["sha256"], "chance_attribute": 1 / 3})
    if args.out:
        print("wrote", write_record(args.out, record))
    return record


if __name__ == "__main__":
    main()
