"""Stable Diffusion at scale (chapter "Stable Diffusion at scale"): the real model's parts built from their published
configurations without weights, counted, and set beside the book's digit-scale twin.

- :data:`SD15_UNET`, :data:`SD15_AUTOENCODER`, :data:`SD15_TEXT`, :data:`SD21_UNET`, :data:`SD21_TEXT`: the keys of
  the ``config.json`` files that diffusers and transformers read from the Hugging Face repositories (:data:`SOURCES`),
  as plain dicts (keys that only name a class or a version left out).
- :func:`build_on_meta` builds a module on PyTorch's meta device (shapes and dtypes, no storage: nothing is downloaded,
  allocated or computed); :func:`count_parameters` counts it; :func:`step_flops` counts one forward pass.
- :data:`SD1_TRAINING` and the arithmetic that checks it; :func:`find_local_pipeline` finds weights already on disk;
  :class:`Scale` and :func:`comparison_table` set the real model and the twin side by side, part by part.

The module never imports diffusers or transformers: the chapter and the tests pass their classes in (``cls``), so the
package and its own tests need neither. It sits with :mod:`diffnotes.pipeline`, whose twin it describes.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from diffnotes.checks import positive_int, positive_ints
from diffnotes.nets.autoencoder import Autoencoder
from diffnotes.nets.text import TextUNet
from diffnotes.pipeline import TextToDigitPipeline
from diffnotes.pretrained import LDM_AUTOENCODER_WEIGHTS, LDM_DIGITS_WEIGHTS, WEIGHTS_DIR

_SD15 = "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/blob/main/"
_SD21 = "https://huggingface.co/stabilityai/stable-diffusion-2-1/blob/main/"
#: Where each configuration comes from, the repository's config.json that diffusers or transformers loads.
SOURCES = {
    "SD15_UNET": _SD15 + "unet/config.json", "SD15_AUTOENCODER": _SD15 + "vae/config.json",
    "SD15_TEXT": _SD15 + "text_encoder/config.json", "SD21_UNET": _SD21 + "unet/config.json",
    "SD21_TEXT": _SD21 + "text_encoder/config.json",
    "SD1_TRAINING": "https://github.com/CompVis/stable-diffusion/blob/main/Stable_Diffusion_v1_Model_Card.md"}

_DOWN = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
_UP = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")
#: Stable Diffusion 1.5's U-Net (diffusers UNet2DConditionModel) with 4 latent channels in and out, widths 320 to
#: 1280, cross-attention to 768-wide CLIP tokens at the three finer levels and in the middle, 8 heads.
SD15_UNET = {
    "sample_size": 64, "in_channels": 4, "out_channels": 4, "center_input_sample": False, "flip_sin_to_cos": True,
    "freq_shift": 0, "down_block_types": _DOWN, "up_block_types": _UP, "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2, "downsample_padding": 1, "mid_block_scale_factor": 1, "act_fn": "silu",
    "norm_num_groups": 32, "norm_eps": 1e-5, "cross_attention_dim": 768, "attention_head_dim": 8}
#: Its KL autoencoder (diffusers AutoencoderKL), f = 8 (three halvings), 4 latent channels.
SD15_AUTOENCODER = {
    "sample_size": 512, "in_channels": 3, "out_channels": 3, "latent_channels": 4,
    "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "act_fn": "silu", "norm_num_groups": 32}
#: Its text encoder, the text half of OpenAI's CLIP ViT-L/14 (transformers CLIPTextConfig).
SD15_TEXT = {
    "vocab_size": 49408, "max_position_embeddings": 77, "hidden_size": 768, "intermediate_size": 3072,
    "num_hidden_layers": 12, "num_attention_heads": 12, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
    "projection_dim": 768, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}
#: Stable Diffusion 2.1 (768x768, v-prediction), the same blocks with heads of 64 channels (5, 10, 20, 20 heads),
#: linear projections into the transformers, and 1024-wide context from OpenCLIP ViT-H/14.
SD21_UNET = {**SD15_UNET, "sample_size": 96, "cross_attention_dim": 1024, "attention_head_dim": (5, 10, 20, 20),
             "use_linear_projection": True, "upcast_attention": True}
#: OpenCLIP ViT-H/14's text tower as diffusers' SD 2 repositories ship it, 23 of its 24 layers, because Stable
#: Diffusion 2 reads the penultimate layer's output.
SD21_TEXT = {**SD15_TEXT, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
             "num_attention_heads": 16, "hidden_act": "gelu", "projection_dim": 512}

#: Stable Diffusion v1's training, from its model card (SOURCES), 32 x 8 A100 PCIe 40GB, batch 32 x 8 x 2 x 4 = 2048,
#: 150,000 hours on AWS US-east, 11,250 kg CO2 eq; sd-v1-1 to v1-3 took 237k steps at 256x256, 194k + 515k + 195k at
#: 512x512. The $600,000 is the lecture's (the hours' market price, as Stability AI's chief put it in August 2022).
SD1_TRAINING = {"gpus": 256, "gpu_hours": 150_000, "dollars": 600_000, "batch": 2048, "kg_co2": 11_250,
                "steps_256": 237_000, "steps_512": 194_000 + 515_000 + 195_000}
# LAION-5B (Schuhmann et al. 2022): 5.85 billion CLIP-filtered image-text pairs, 2.32 billion of them in English
# (LAION-2B-en, whose subsets trained Stable Diffusion v1).
LAION_5B_PAIRS, LAION_2B_EN_PAIRS = 5_850_000_000, 2_320_000_000
# NVIDIA's A100 PCIe 40GB: 250 W board power; 312 TFLOP/s dense bf16/fp16 on tensor cores, 19.5 in plain fp32.
A100_WATTS, A100_PEAK_FLOPS, A100_FP32_FLOPS = 250, 312e12, 19.5e12
# AWS p4d.24xlarge (8 A100 40GB) on demand in us-east-1, 2022: $32.77 per hour. MosaicML (January 2023) estimated
# 79,000 A100-hours, under $160,000, to train Stable Diffusion 2 base from scratch.
AWS_P4D_DOLLARS_PER_HOUR = 32.77
MOSAICML_SD2 = {"gpu_hours": 79_000, "dollars": 160_000}


def build_on_meta(cls: type[nn.Module], config: dict | object) -> nn.Module:
    """``cls(**config)`` (a dict: diffusers' models) or ``cls(config)`` (a configuration object: transformers'),
    built on the meta device: parameters with shapes and no storage.

    Raises:
        TypeError: if ``cls`` is not an ``nn.Module`` class.
        RuntimeError: if the module built has a parameter off the meta device (a class that fixes its own device).
    """
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise TypeError(f"cls must be an nn.Module class, got {cls!r}")
    with torch.device("meta"):
        module = cls(**config) if isinstance(config, dict) else cls(config)
    if off := [name for name, p in module.named_parameters() if not p.is_meta]:
        raise RuntimeError(f"{cls.__name__} put {len(off)} parameters off the meta device, e.g. {off[0]}")
    return module


def count_parameters(module: nn.Module) -> int:
    """The number of parameters of ``module`` (each shared tensor once), trainable or frozen, on any device."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters())


def pixel_space(config: dict, channels: int = 3, size: int = 512) -> dict:
    """A diffusers U-Net configuration moved to pixel space: ``channels`` in and out, images of side ``size``."""
    positive_ints(channels=channels, size=size)
    return {**config, "in_channels": channels, "out_channels": channels, "sample_size": size}


#: How the counter's operators are grouped into convolutions, linear layers, attention's products (Q K^T, A V).
FLOP_GROUPS = {"convolution": "convolution", "addmm": "linear", "mm": "linear", "bmm": "attention",
               "baddbmm": "attention"}


def step_flops(unet: nn.Module, sample_shape: Sequence[int], context_shape: Sequence[int] | None = None,
               timestep: int = 500) -> dict[str, int]:
    """FLOPs of one forward ``unet(x, t, context)`` of one example, a multiply-add counted as 2, on the meta device.

    ``sample_shape`` is (C, H, W); ``context_shape`` (L, width) for a text-conditioned U-Net (L tokens), None for
    ``unet(x, t)``: the order of diffusers' ``UNet2DConditionModel`` and of :class:`~diffnotes.nets.unet.UNet`.
    Returns the counts by :data:`FLOP_GROUPS` group (other operators under their own names) and their ``"total"``.
    On the meta device ``scaled_dot_product_attention`` runs as batched matrix products, which the counter counts; on
    CPU tensors it runs a fused kernel the counter does not know, and attention would count zero. So the count always
    runs on the meta device (a module with real weights is copied there first).

    Raises:
        ValueError: if a shape is not a tuple of positive integers, or ``timestep`` is negative.
    """
    from torch.utils.flop_counter import FlopCounterMode

    for name, shape in (("sample_shape", sample_shape), ("context_shape", context_shape or (1,))):
        if not isinstance(shape, Sequence) or not shape:
            raise ValueError(f"{name} must be a tuple of positive integers, got {shape!r}")
        positive_ints(**{f"{name}[{i}]": n for i, n in enumerate(shape)})
    if isinstance(timestep, bool) or not isinstance(timestep, int) or timestep < 0:
        raise ValueError(f"timestep must be an integer >= 0, got {timestep!r}")
    if not all(p.is_meta for p in unet.parameters()):
        unet = copy.deepcopy(unet).to("meta")
    args = [torch.empty(1, *sample_shape, device="meta"), torch.full((1,), timestep, device="meta")]
    if context_shape:
        args.append(torch.empty(1, *context_shape, device="meta"))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        unet(*args)
    counts: dict[str, int] = {}
    for op, flops in counter.get_flop_counts()["Global"].items():
        group = FLOP_GROUPS.get(str(op).split(".")[-1], str(op))
        counts[group] = counts.get(group, 0) + int(flops)
    return {**counts, "total": counter.get_total_flops()}


def _positive(**values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


def wall_clock_days(gpu_hours: float, gpus: int) -> float:
    """Days of wall clock that ``gpu_hours`` take on ``gpus`` GPUs working together all the time."""
    _positive(gpu_hours=gpu_hours, gpus=positive_int("gpus", gpus))
    return gpu_hours / gpus / 24


def dollars_per_gpu_hour(dollars: float, gpu_hours: float) -> float:
    """The price of one GPU-hour that a total of ``dollars`` for ``gpu_hours`` implies."""
    _positive(dollars=dollars, gpu_hours=gpu_hours)
    return dollars / gpu_hours


def energy_kwh(gpu_hours: float, watts: float) -> float:
    """The energy in kWh of ``gpu_hours`` at a board power of ``watts`` (GPUs only: no CPUs, cooling or network)."""
    _positive(gpu_hours=gpu_hours, watts=watts)
    return gpu_hours * watts / 1000


#: Where find_local_pipeline looks, diffusers' Stable Diffusion repositories and a variable naming a pipeline folder.
REPO_IDS = ("stable-diffusion-v1-5/stable-diffusion-v1-5", "runwayml/stable-diffusion-v1-5",
            "CompVis/stable-diffusion-v1-4", "stabilityai/stable-diffusion-2-1")
PIPELINE_ENV = "DIFFNOTES_SD_PIPELINE"


def find_local_pipeline(repo_ids: Sequence[str] = REPO_IDS) -> Path | None:
    """The folder of a Stable Diffusion pipeline already on this disk, or None: never touches the network.

    First the folder named by ``$DIFFNOTES_SD_PIPELINE``; then, for each of ``repo_ids`` in turn, the snapshot that
    its ``refs/main`` points to, else any snapshot, that holds a ``model_index.json``, in the hub cache
    (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ~/.cache/huggingface/hub). Pass the result to
    ``StableDiffusionPipeline.from_pretrained(path, local_files_only=True)``.

    Raises:
        FileNotFoundError: if ``$DIFFNOTES_SD_PIPELINE`` is set but names no folder with a ``model_index.json``.
    """
    if named := os.environ.get(PIPELINE_ENV):
        if not (Path(named) / "model_index.json").is_file():
            raise FileNotFoundError(f"${PIPELINE_ENV} is {named!r}, which holds no model_index.json")
        return Path(named)
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    cache = Path(os.environ.get("HF_HUB_CACHE") or Path(home) / "hub")
    for repo_id in repo_ids:
        repo = cache / ("models--" + repo_id.replace("/", "--"))
        ref = repo / "refs" / "main"
        first = [repo / "snapshots" / ref.read_text().strip()] if ref.is_file() else []
        for snapshot in first + sorted((repo / "snapshots").glob("*")):
            if (snapshot / "model_index.json").is_file():
                return snapshot
    return None


@dataclass(frozen=True)
class Scale:
    """One text-to-image latent diffusion model, part by part, as the chapter's table sets them side by side. Shapes
    are (C, H, W); ``attention_sides`` are the sides of the levels that attend (the middle attends in both models)."""

    image: tuple[int, int, int]
    latent: tuple[int, int, int]
    autoencoder_parameters: int
    text: tuple[int, int, int]  # layers, width, tokens
    text_parameters: int
    unet_widths: tuple[int, ...]
    attention_sides: tuple[int, ...]
    unet_parameters: int
    context_width: int
    guidance: float
    data: str
    cost: str


def twin_records(weights_dir: Path = WEIGHTS_DIR) -> dict:
    """The twin's provenance records: ``autoencoder``, and ``model``, the text model's (``text_digits.json``) once it
    is exported, else the unconditional latent model's (``ldm_digits.json``); ``model_name`` says which."""
    records = {"autoencoder": json.loads((weights_dir / LDM_AUTOENCODER_WEIGHTS.name).with_suffix(".json").read_text())}
    for name in ("text_digits", LDM_DIGITS_WEIGHTS.stem):
        if (weights_dir / f"{name}.json").is_file():
            return {**records, "model": json.loads((weights_dir / f"{name}.json").read_text()), "model_name": name}
    raise FileNotFoundError(f"no provenance record of the twin's U-Net in {weights_dir}")


def twin_scale(model: TextUNet, autoencoder: Autoencoder, records: dict) -> Scale:
    """The twin's :class:`Scale`: counts and shapes from the modules, cost from the provenance ``records``
    (:func:`twin_records`), guidance from :class:`~diffnotes.pipeline.TextToDigitPipeline`'s default."""
    enc, unet, ae = model.encoder.config, model.unet.config, autoencoder.config
    side = ae.padded_size // 2**ae.downsamples
    hours = sum(records[name]["seconds"] for name in ("autoencoder", "model")) / 3600
    return Scale(
        (ae.image_channels, ae.image_size, ae.image_size), (ae.latent_channels, side, side),
        count_parameters(autoencoder), (enc.layers, enc.width, enc.max_length), count_parameters(model.encoder),
        unet.widths, tuple(-(-side // 2**i) for i, a in enumerate(unet.attention) if a), count_parameters(model.unet),
        unet.context_dim, inspect.signature(TextToDigitPipeline.__call__).parameters["guidance_scale"].default,
        "5,000 MNIST digits", f"{hours:.1f} CPU-hours")


def sd_scale(unet: nn.Module, autoencoder: nn.Module, text_encoder: nn.Module, configs: tuple[dict, dict, dict],
             guidance: float, data: str, cost: str) -> Scale:
    """A Stable Diffusion :class:`Scale` from its meta builds and their ``configs`` (U-Net, autoencoder, text
    encoder dicts such as :data:`SD15_UNET`, :data:`SD15_AUTOENCODER`, :data:`SD15_TEXT`)."""
    u, a, t = configs
    side = a["sample_size"] // 2 ** (len(a["block_out_channels"]) - 1)
    attending = tuple(u["sample_size"] // 2**i for i, b in enumerate(u["down_block_types"]) if "CrossAttn" in b)
    return Scale(
        (a["in_channels"], a["sample_size"], a["sample_size"]), (a["latent_channels"], side, side),
        count_parameters(autoencoder), (t["num_hidden_layers"], t["hidden_size"], t["max_position_embeddings"]),
        count_parameters(text_encoder), tuple(u["block_out_channels"]), attending, count_parameters(unet),
        u["cross_attention_dim"], guidance, data, cost)


def _hwc(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape[1:] + shape[:1])


#: The rows of comparison_table, each a label and how a Scale shows it.
ROWS: dict[str, Callable[[Scale], str]] = {
    "image": lambda s: _hwc(s.image),
    "latent (factor f)": lambda s: f"{_hwc(s.latent)} (f = {-(-s.image[-1] // s.latent[-1])})",  # padded side
    "autoencoder parameters": lambda s: f"{s.autoencoder_parameters:,}",
    "text encoder": lambda s: "{} layers x {}, {} tokens".format(*s.text),
    "text encoder parameters": lambda s: f"{s.text_parameters:,}",
    "U-Net widths": lambda s: "/".join(map(str, s.unet_widths)),
    "attention at sides": lambda s: ", ".join(map(str, s.attention_sides)) + " and middle",
    "U-Net parameters": lambda s: f"{s.unet_parameters:,}",
    "context width": lambda s: str(s.context_width),
    "guidance default": lambda s: f"{s.guidance:g}",
    "training data": lambda s: s.data,
    "training cost": lambda s: s.cost,
}


def comparison_table(scales: dict[str, Scale]) -> str:
    """A text table of :data:`ROWS` with one column per :class:`Scale` (H x W x C shapes, counts in full)."""
    width = max(len(show(s)) for show in ROWS.values() for s in scales.values()) + 2
    lines = [" " * 24 + "".join(f"{name:>{width}s}" for name in scales)]
    lines += [f"{label:24s}" + "".join(f"{show(s):>{width}s}" for s in scales.values()) for label, show in ROWS.items()]
    return "\n".join(lines)
