"""What a PyTorch user would try to speed up the digit model's training step on a CPU, each measured against the
step the package takes.

    python benchmarks/train_options.py --out benchmarks/results/train_options-cpu.json
    python benchmarks/train_options.py --precision fp32 --compile --out benchmarks/results/train_options-cpu-fp32.json

One training step of :func:`diffnotes.training.train_step` on the digit model's U-Net (forward, loss, backward,
AdamW, EMA) on the 5,000 real digits, in the precision given (``bf16``, the package's default where the CPU has
bfloat16 matrix units, or ``fp32``). The variants, each a fresh network with the same seed:

- ``package``: the step as the package runs it (AdamW's default implementation, the memory format ``auto`` picks for
  the precision, :func:`diffnotes.runtime.memory_format`, all threads);
- ``channels_last`` / ``contiguous``: the network in that memory format (one of them is the package's choice: the
  pair shows what the choice is worth);
- ``fused AdamW`` / ``foreach AdamW``: the optimiser's fused (one kernel) and multi-tensor implementations;
- ``one thread``: ``torch.set_num_threads(1)`` for the step (the package uses every core);
- ``torch.compile`` (with ``--compile``): the network compiled by Inductor (the compile time is not counted).

They take turns in ``--rounds`` rounds of ``--steps`` steps, the order reversed every round, so a slow spell of a
shared machine falls on all; the record keeps every round, the median and the ratio to ``package``, and, after the
warm-up steps, how many weights the variant's last backward pass left without a gradient
(:func:`diffnotes.evaluation.timing.parameters_without_gradient`: a variant that is fast because it trains less is not
an option). A benchmark: it asserts nothing; an option is worth taking where its ratio is clearly above 1 in every
round and every weight has a gradient.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from diffnotes.data import load_mnist_5k
from diffnotes.evaluation.timing import parameters_without_gradient
from diffnotes.nets.unet import UNet
from diffnotes.perfnotes import new_record, take_turns, write_record
from diffnotes.pretrained import DIGITS_UNET, digits_schedule
from diffnotes.runtime import MEMORY_FORMATS, memory_format_name
from diffnotes.training import TrainConfig, new_state, train_step


def variants(config: TrainConfig, compiled: bool) -> dict:
    """``{name: (state, threads)}``: a fresh network (in its memory format) and optimiser per variant, and the threads
    it runs on."""
    made = {}
    names = ["package", "channels_last", "contiguous", "fused AdamW", "foreach AdamW", "one thread"]
    names += ["torch.compile"] if compiled else []
    for name in names:
        torch.manual_seed(0)
        model = UNet(DIGITS_UNET)
        layout = name if name in MEMORY_FORMATS else config.memory_format
        state = new_state(model, replace(config, memory_format=layout))
        if name in ("fused AdamW", "foreach AdamW"):
            kind = name.split()[0]  # "fused" or "foreach", AdamW's keyword
            state.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0, **{kind: True})
        if name == "torch.compile":
            state.model = torch.compile(model)
        made[name] = (state, 1 if name == "one thread" else torch.get_num_threads())
    return made


def race(config: TrainConfig, rounds: int, steps: int, warmup: int,
         compiled: bool) -> tuple[dict[str, list[float]], dict[str, int]]:
    """The images per second of each variant in each round, and the number of its weights that the last warm-up step
    left without a gradient."""
    schedule = digits_schedule().to(dtype=torch.float32)
    cpu, threads = torch.device("cpu"), torch.get_num_threads()
    images, _ = load_mnist_5k()
    runs = variants(config, compiled)
    missing = {}
    for name, (state, n) in runs.items():
        torch.set_num_threads(n)
        for _ in range(warmup):
            train_step(state, images, schedule, config, cpu)
        missing[name] = len(parameters_without_gradient(state.model))

    def one_round(name: str) -> float:
        state, n = runs[name]
        torch.set_num_threads(n)
        start = time.perf_counter()
        for _ in range(steps):
            train_step(state, images, schedule, config, cpu)
        return config.batch_size * steps / (time.perf_counter() - start)

    rates = take_turns(runs, one_round, rounds, "img/s")
    torch.set_num_threads(threads)
    return rates, missing


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant and round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant (at least 2: the first "
                        "trains only the zero-initialised head, whose weights the next step's gradients cross)")
    parser.add_argument("--compile", action="store_true", help="also race the compiled network")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.warmup < 2:
        parser.error(f"--warmup must be at least 2, got {args.warmup}")
    config = TrainConfig(batch_size=args.batch, lr=8e-4, warmup_steps=1, mixed_precision=args.precision)
    rates, missing = race(config, args.rounds, args.steps, args.warmup, args.compile)
    base = statistics.median(rates["package"])
    package_layout = memory_format_name(config.memory_format, args.precision, "cpu")
    results = {"precision": args.precision, "package_memory_format": package_layout, "batch": args.batch,
               "threads": torch.get_num_threads(),
               "rounds": args.rounds, "steps_per_round": args.steps,
               "variants": {name: {"images_per_second": round(statistics.median(r), 1),
                                   "rounds": [round(x, 1) for x in r],
                                   "ratio_to_package": round(statistics.median(r) / base, 3),
                                   "parameters_without_gradient": missing[name]}
                            for name, r in rates.items()}}
    for name, v in results["variants"].items():
        print(f"{name:15s} {v['images_per_second']:7.1f} img/s  x{v['ratio_to_package']:.2f}"
              f"  {v['parameters_without_gradient']} weights without a gradient")
    record = new_record("train_options", results)
    if args.out:
        print("wrote", write_record(args.out, record))
    return record


if __name__ == "__main__":
    main()
