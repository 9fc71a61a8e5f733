"""What latent diffusion saves: the cost of a training step and of a sampling step of the pixel digit U-Net on
28x28x1 images against the latent U-Net on 7x7x4 latents, in one interleaved run on one device.

    python benchmarks/latent_cost.py --out benchmarks/results/latent_cost-cpu.json
    python benchmarks/latent_cost.py --quick            # seconds: checks that the script runs, measures nothing

The pixel model is :data:`diffnotes.pretrained.DIGITS_UNET` on (1, 28, 28); the latent model is
:data:`diffnotes.latent.LATENT_UNET` on the autoencoder's latents (4, 7, 7) (the costs do not depend on the weights).
One training step = forward, L_simple, backward, AdamW step, EMA update (:func:`diffnotes.training.train_step`); one
sampling step = one DDIM step (:func:`diffnotes.samplers.ddim.ddim_sample`, eta = 0), a network evaluation. Both are
reported in images per second, with the FLOPs per image counted from the models
(:func:`diffnotes.evaluation.timing.flops_per_image`) and the ratios pixel / latent. A latent sample also pays
once for the decoder, whose FLOPs and time per image are recorded beside them. The models take turns (``--rounds``,
in the order A B, B A, ...) so that a slow spell of a shared machine falls on both; the record keeps every round and
the median. A benchmark: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from diffnotes.evaluation.timing import flops_per_image
from diffnotes.latent import LATENT_UNET
from diffnotes.nets.autoencoder import Autoencoder, AutoencoderConfig
from diffnotes.nets.unet import UNet, count_parameters
from diffnotes.perfnotes import machine, new_record, write_record
from diffnotes.pretrained import DIGITS_UNET, digits_schedule
from diffnotes.runtime import get_device
from diffnotes.samplers.ddim import ddim_sample
from diffnotes.training import TrainConfig, new_state, train_step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(run, device: torch.device) -> float:
    """Seconds of one call of ``run()``, the device synchronised before and after."""
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - start


def decoder_flops(decoder: Autoencoder, batch: int = 2) -> float:
    """FLOPs per image of one decoding D(z) (matrix products and convolutions, a multiply-add counted as 2)."""
    z = torch.randn(batch, *decoder.config.latent_shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        decoder.decode(z)
    return counter.get_total_flops() / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch", type=int, default=None, help="default: 128 on a CPU, 2048 on a GPU")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per round (5 CPU, 50 GPU)")
    parser.add_argument("--sample-steps", type=int, default=20, help="DDIM steps per timed sampling run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the models take turns")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script runs")
    parser.add_argument("--out", default=None, help="also write a record, e.g. benchmarks/results/latent_cost-cpu.json")
    args = parser.parse_args()
    device = get_device(args.device)
    gpu = device.type == "cuda"
    batch, steps = args.batch or (2048 if gpu else 128), args.steps or (50 if gpu else 5)
    sample_steps, rounds = args.sample_steps, args.rounds
    if args.quick:
        batch, steps, sample_steps, rounds = 4, 1, 2, 2
    print(f"device: {machine()}; batch {batch}; torch {torch.__version__}")
    shapes = {"pixel": (1, 28, 28), "latent": AutoencoderConfig().latent_shape}
    torch.manual_seed(0)
    models = {"pixel": UNet(DIGITS_UNET).to(device), "latent": UNet(LATENT_UNET).to(device)}
    decoder = Autoencoder().eval()
    config = TrainConfig(steps=10**9, batch_size=batch, mixed_precision="fp32", warmup_steps=1)
    schedule = digits_schedule().to(device=device, dtype=torch.float32)
    data = {name: torch.randn(4096, *shape) for name, shape in shapes.items()}
    states = {name: new_state(model, config) for name, model in models.items()}
    starts = {name: torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0)).to(device)
              for name, shape in shapes.items()}
    training = {name: (lambda n=name: [train_step(states[n], data[n], schedule, config, device) for _ in range(steps)])
                for name in models}
    sampling = {name: (lambda n=name: ddim_sample(models[n].eval(), schedule, starts[n], sample_steps))
                for name in models}
    for name, model in models.items():  # warm-up, untimed
        train_step(states[name], data[name], schedule, config, device)
        ddim_sample(model.eval(), schedule, starts[name], 1)
    rates = {(name, kind): [] for name in models for kind in ("train", "sample")}
    for r in range(rounds):
        for name in list(models) if r % 2 == 0 else reversed(list(models)):
            models[name].train()
            rates[name, "train"].append(batch * steps / timed(training[name], device))
            rates[name, "sample"].append(batch * sample_steps / timed(sampling[name], device))
            print(f"round {r + 1}: {name:6s} train {rates[name, 'train'][-1]:9.1f} img/s, "
                  f"sample {rates[name, 'sample'][-1]:9.1f} img-steps/s", flush=True)
    z = torch.randn(batch, *shapes["latent"])
    with torch.no_grad():
        decode_seconds = statistics.median(timed(lambda: decoder.decode(z), torch.device("cpu")) for _ in range(rounds))
    results = {}
    for name, model in models.items():
        train_flops = flops_per_image(model, shapes[name], backward=True)
        eval_flops = flops_per_image(model.eval(), shapes[name])
        results[name] = {
            "config": {"widths": list(model.config.widths), "attention": list(model.config.attention)},
            "shape": list(shapes[name]), "parameters": count_parameters(model),
            "train_images_per_second": round(statistics.median(rates[name, "train"]), 1),
            "train_rounds": [round(x, 1) for x in rates[name, "train"]],
            "sample_image_steps_per_second": round(statistics.median(rates[name, "sample"]), 1),
            "sample_rounds": [round(x, 1) for x in rates[name, "sample"]],
            "train_gflop_per_image": round(train_flops / 1e9, 4),
            "sample_step_gflop_per_image": round(eval_flops / 1e9, 4),
        }
    pixel, latent = results["pixel"], results["latent"]
    results["ratio_pixel_over_latent"] = {
        "train_time": round(latent["train_images_per_second"] / pixel["train_images_per_second"], 2),
        "sample_step_time": round(latent["sample_image_steps_per_second"] / pixel["sample_image_steps_per_second"], 2),
        "train_flops": round(pixel["train_gflop_per_image"] / latent["train_gflop_per_image"], 2),
        "sample_step_flops": round(pixel["sample_step_gflop_per_image"] / latent["sample_step_gflop_per_image"], 2),
    }
    results["decoder"] = {"parameters": count_parameters(decoder),
                          "gflop_per_image": round(decoder_flops(decoder) / 1e9, 4),
                          "seconds_per_image_cpu": decode_seconds / batch}
    record = new_record("latent_cost", {"batch": batch, "train_steps_per_round": steps, "sample_steps": sample_steps,
                                        "rounds": rounds, "quick": args.quick, "precision": "fp32", **results})
    print(json.dumps(results["ratio_pixel_over_latent"]))
    if args.out:
        print("wrote", write_record(args.out, record))
    else:
        print(json.dumps(record))


if __name__ == "__main__":
    main()
