"""The rate-distortion trade-off of latent diffusion's autoencoder: how well each latent size reconstructs digits.

    for size in 14x14x2 7x7x4 7x7x2 4x4x4; do
        python -m diffnotes.train_autoencoder --latent-size $size --checkpoint runs/ae_$size.pt --steps 6000
        python -m diffnotes.train_autoencoder --checkpoint runs/ae_$size.pt --export runs/ae_$size.pt.export
    done
    python benchmarks/rate_distortion.py runs/ae_*.export.json --out benchmarks/results/rate_distortion-cpu.json

Each autoencoder of :data:`diffnotes.nets.autoencoder.LATENT_SIZES` is trained by the package's entry point with the
same settings and exported with its provenance, which measures its reconstructions of the 500 held-out digits
(:func:`diffnotes.train_autoencoder.measure_reconstruction`). This script gathers those measurements, with the
command, steps and training time of each, into one record that the chapter "Latent diffusion" plots; only the
7x7x4 autoencoder's weights ship with the package. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from diffnotes.perfnotes import new_record, write_record


def point(provenance: dict) -> dict:
    """The rate-distortion point of one exported autoencoder's provenance."""
    quality, shape = provenance["quality"], provenance["latent_shape"]
    return {"latent_shape": shape, "numbers": math.prod(shape), "parameters": provenance["parameters"],
            "mse": quality["mse"], "psnr_db": quality["psnr_db"], "read": quality["correct_confident_reconstructions"],
            "read_originals": quality["correct_confident_originals"], "steps": provenance["steps"],
            "training_seconds": provenance["seconds"], "command": provenance["command"], "sha256": provenance["sha256"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", nargs="+", type=Path, help="provenance JSON files of exported autoencoders")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    sizes = {}
    for path in args.records:
        provenance = json.loads(path.read_text())
        c, h, w = provenance["latent_shape"]
        sizes[f"{h}x{w}x{c}"] = point(provenance)
    for name, p in sorted(sizes.items(), key=lambda item: -item[1]["numbers"]):
        print(f"{name:8s} {p['numbers']:4d} numbers  MSE {p['mse']:.4f}  PSNR {p['psnr_db']:.1f} dB  "
              f"read {p['read']:.1%} (originals {p['read_originals']:.1%})")
    record = new_record("rate_distortion", {"sizes": sizes, "data": "the 500 held-out digits"})
    if args.out:
        print("wrote", write_record(args.out, record))
    return record


if __name__ == "__main__":
    main()
