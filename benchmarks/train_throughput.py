"""Training throughput of the book's compact U-Net against diffusers' UNet2DModel of the same widths.

    python benchmarks/train_throughput.py                       # both models, eager, the device's default batch
    python benchmarks/train_throughput.py --precision fp32 bf16 --out benchmarks/results/train_throughput-cpu.json
    python benchmarks/train_throughput.py --batch 2048 --bf16 --compile
    python benchmarks/train_throughput.py --memory-format contiguous   # both models in the default layout
    python benchmarks/train_throughput.py --time-to-bar         # also: training time until the quality bar is met

One training step = forward, L_simple, backward, AdamW step, EMA update (the loop of diffnotes.training), on
random digits-shaped batches (28x28x1). Prints images per second for each model, in one run on one device, so the
numbers compare; with several ``--precision`` the runs of every precision take turns too, and the script writes one
record per precision (``-fp32``, ``-bf16`` added to the name given by ``--out``). Each record also holds the FLOPs
of one training step per image (:func:`diffnotes.evaluation.timing.flops_per_image`, forward and backward) and, on a
CPU, the rate they make as a fraction of the machine's peak (:func:`diffnotes.perfnotes.cpu_peak_flops`, the method
stated in the record). The models take turns (``--rounds``, in the order A B, B A, A B, ...), so that a slow spell of a
shared machine falls on both; the record keeps every round and the median. This is a benchmark, not a test: it prints
numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from diffnotes import schedules
from diffnotes.nets.unet import UNet, UNetConfig, count_parameters
from diffnotes.evaluation.timing import flops_per_image, parameters_without_gradient
from diffnotes.perfnotes import cpu_peak_flops, machine, new_record, take_turns, write_record
from diffnotes.runtime import MEMORY_FORMATS, get_device, memory_format_name
from diffnotes.training import TrainConfig, new_state, train_step


class DiffusersUNet(torch.nn.Module):
    """diffusers' UNet2DModel behind the book's contract model(x_t, t, cond) (t in 1..T -> diffusers' t - 1)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        down = ["AttnDownBlock2D" if a else "DownBlock2D" for a in config.attention]
        up = ["AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.attention)]
        self.config = config
        self.net = UNet2DModel(
            sample_size=28, in_channels=config.in_channels, out_channels=config.in_channels,
            block_out_channels=config.widths, layers_per_block=config.res_blocks, down_block_types=down,
            up_block_types=up, norm_num_groups=config.groups, attention_head_dim=config.widths[-1] // config.heads,
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x_t, t - 1).sample


def images_per_second(state, images: torch.Tensor, schedule, config: TrainConfig, device: torch.device,
                      steps: int) -> float:
    """Images per second over ``steps`` training steps of ``state`` (a warmed-up :class:`TrainState`)."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(state, images, schedule, config, device)
    _sync(device)
    return config.batch_size * steps / (time.perf_counter() - start)


def race(models: dict[str, torch.nn.Module], device: torch.device, batch: int, precision: str | list[str], steps: int,
         rounds: int, warmup: int, layout: str = "auto") -> tuple[dict[str, list[float]], dict[str, int]]:
    """Images per second of every model in each precision in each of ``rounds`` rounds of ``steps`` timed steps,
    after ``warmup`` untimed ones; the runs take turns, the order reversed every round. Returns ``{name: [rate per
    round]}``, the name with ``", bf16"`` (etc.) added when several precisions race, and ``{name: the number of
    weights that the last warm-up step left without a gradient}`` (give two warm-up steps or more: the first reaches
    only the zero-initialised output layers; :func:`diffnotes.evaluation.timing.parameters_without_gradient`). Every
    network is put in the memory format ``layout`` names (``auto``: the package's choice for the precision,
    :func:`diffnotes.runtime.memory_format`)."""
    precisions = [precision] if isinstance(precision, (str, bool)) else list(precision)
    configs = {p: TrainConfig(steps=warmup + rounds * steps, batch_size=batch, mixed_precision=p, warmup_steps=1,
                              memory_format=layout) for p in precisions}
    images = torch.rand(4096, 1, 28, 28) * 2 - 1
    schedule = schedules.linear(T=1000).to(device=device, dtype=torch.float32)
    states, config_of = {}, {}
    for p in precisions:
        for name, model in models.items():
            key = name if len(precisions) == 1 else f"{name}, {configs[p].mixed_precision}"
            own = model if p == precisions[-1] else copy.deepcopy(model)  # one network per run
            states[key], config_of[key] = new_state(own.to(device), configs[p]), configs[p]
    missing = {}
    for key, state in states.items():
        for _ in range(warmup):
            train_step(state, images, schedule, config_of[key], device)
        missing[key] = len(parameters_without_gradient(state.model))

    def one_round(key: str) -> float:
        return images_per_second(states[key], images, schedule, config_of[key], device, steps)

    return take_turns(states, one_round, rounds, "img/s"), missing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_to_bar(device: torch.device, batch: int, precision: str, eval_every: int, max_steps: int,
                quality_n: int | None = None, max_seconds: float | None = None) -> dict:
    """Train the book's digit model from scratch; every ``eval_every`` steps, measure its EMA weights by the shipped
    model's protocol (:func:`diffnotes.pretrained.measure_quality`, with ``quality_n`` samples instead of its 1,000
    where given: only to check the script) and stop once the bar is met, after ``max_steps``, or when another round
    of training and measuring would end past ``max_seconds`` of wall-clock time (so that a run with a time limit
    still returns what it measured). The result keeps every measurement."""
    from diffnotes.data import load_mnist_5k
    from diffnotes.evaluation.quality import meets_bar
    from diffnotes.pretrained import DIGITS_UNET, QUALITY_PROTOCOL, digits_schedule, measure_quality

    images, _ = load_mnist_5k()
    torch.manual_seed(0)
    config = TrainConfig(steps=max_steps, batch_size=batch, mixed_precision=precision)
    schedule = digits_schedule().to(device=device, dtype=torch.float32)
    state = new_state(UNet(DIGITS_UNET).to(device), config)
    began, trained, points = time.perf_counter(), 0.0, []
    result = {"steps": state.step, "training_seconds": 0.0, "points": points}
    while state.step < max_steps:
        _sync(device)
        start = time.perf_counter()
        for _ in range(eval_every):
            train_step(state, images, schedule, config, device)
        _sync(device)
        trained += time.perf_counter() - start
        report = measure_quality(state.ema.eval(), n=quality_n or QUALITY_PROTOCOL["n"], device=device)
        print(f"step {state.step}: {trained:.1f} s of training; {report}", flush=True)
        points.append({"step": state.step, "training_seconds": round(trained, 1),
                       "confident_fraction": report.confident_fraction, "frechet_distance": report.frechet_distance})
        result = {"steps": state.step, "training_seconds": round(trained, 1), "points": points}
        if meets_bar(report):
            return {**result, "report": str(report)}
        elapsed = time.perf_counter() - began
        if max_seconds is not None and elapsed * (1 + 1 / len(points)) > max_seconds:  # one more round would not fit
            return {**result, "report": f"bar not reached within {max_seconds:g} s"}
    return {**result, "report": "bar not reached"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch", type=int, default=None, help="default: 128 on a CPU, 2048 on a GPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per round (default: 5 on a CPU, 50 on a GPU)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of timed steps; the models take turns")
    parser.add_argument("--bf16", action="store_true", help="the same as --precision bf16")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16", "auto"],
                        help="precisions to race (default fp32); one record each")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--memory-format", default="auto", choices=MEMORY_FORMATS,
                        help="both models' layout (default auto: the package's choice for each precision)")
    parser.add_argument("--time-to-bar", action="store_true")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--max-steps", type=int, default=20_000)
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop the time to the bar before another round would end past this many seconds")
    parser.add_argument("--quality-n", type=int, default=None,
                        help="samples per quality measurement (default: the protocol's 1,000; fewer only to check the script)")
    parser.add_argument("--out", default=None, help="also write the numbers as a record, e.g. benchmarks/results/x.json")
    args = parser.parse_args()
    device = get_device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch or (2048 if gpu else 128)
    steps = args.steps or (50 if gpu else 5)
    precisions = ["bf16"] if args.bf16 else args.precision
    print(f"device: {machine()}; batch {batch}; {precisions}; compile {args.compile}; torch {torch.__version__}")
    models, parameters, step_flops = {}, {}, {}
    for name, build in (("diffnotes UNet", lambda: UNet(UNetConfig())), ("diffusers UNet2DModel", lambda: DiffusersUNet(UNetConfig()))):
        torch.manual_seed(0)
        model = build()
        parameters[name] = count_parameters(model)
        step_flops[name] = flops_per_image(model, (1, 28, 28), backward=True)
        models[name] = torch.compile(model) if args.compile else model
    rates, missing = race(models, device, batch, precisions, steps, args.rounds, 3 if args.compile else 2,
                          args.memory_format)
    peak = cpu_peak_flops() if device.type == "cpu" else None
    for precision in precisions:
        results = {}
        for name in models:
            key = name if len(precisions) == 1 else f"{name}, {precision}"
            per_round = rates[key]
            median = statistics.median(per_round)
            results[name] = {"parameters": parameters[name], "images_per_second": round(median, 1),
                             "rounds": [round(rate, 1) for rate in per_round],
                             "gflop_per_image": round(step_flops[name] / 1e9, 3),
                             "gflop_per_second": round(median * step_flops[name] / 1e9, 1),
                             "parameters_without_gradient": missing[key]}
            if peak is not None:  # bf16 runs are measured against the bf16 (AMX) peak where there is one
                results[name]["fraction_of_peak"] = round(median * step_flops[name] / peak[precision if precision == "bf16" else "fp32"], 4)
            print(f"{name:24s} {precision} {parameters[name] / 1e6:5.2f} M parameters   median {median:10.1f} img/s")
        if args.time_to_bar:
            results["time_to_bar"] = time_to_bar(device, batch, precision, args.eval_every, args.max_steps, args.quality_n,
                                                 args.max_seconds)
            print(results["time_to_bar"])
        extra = {"precision": precision, "peak": peak, "raced_with": precisions} if len(precisions) > 1 or peak else {}
        layout = memory_format_name(args.memory_format, precision, device)
        record = new_record("train_throughput", {"batch": batch, "bf16": precision == "bf16", "compile": args.compile,
                                                 "memory_format": layout,
                                                 "steps_per_round": steps, "rounds": args.rounds, **extra, **results})
        print(json.dumps(record))
        if args.out:
            out = args.out if len(precisions) == 1 else args.out.replace(".json", f"-{precision}.json")
            print("wrote", write_record(out, record))


if __name__ == "__main__":
    main()
