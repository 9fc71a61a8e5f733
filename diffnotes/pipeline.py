"""A text-to-image pipeline a diffusers user recognises, at digit scale (chapter "Ways to use it").

``pipe = TextToDigitPipeline(model, autoencoder, scale)``; ``pipe("a thick, slanted seven").images`` runs
text -> tokens (:class:`diffnotes.nets.text.Tokenizer`) -> tau(y) and the U-Net (:class:`diffnotes.nets.text.TextUNet`)
-> classifier-free guided DDIM in the latent space (:func:`diffnotes.nets.guidance.guided`) -> the decoder
(:func:`diffnotes.latent.decode_latents`), with diffusers' argument names and defaults.

- Prompts: made of the caption grammar's words (:class:`~diffnotes.nets.text.Tokenizer`); the empty prompt is the
  null caption (an unconditional sample); unknown words and over-long prompts are errors naming them.
- Guidance: eps_hat = eps(z, null) + w (eps(z, y) - eps(z, null)) with w = ``guidance_scale``; the null caption is
  the empty prompt, or ``negative_prompt`` when given. Unlike diffusers, which turns guidance off for w <= 1, every
  finite w is used as written (w = 0 is the unconditional model; w = 1 the conditional one, run without the second
  evaluation).
- img2img / SDEdit (``image``, ``strength``): as diffusers' ``get_timesteps``, init_timestep = min(int(S strength),
  S), and the last init_timestep steps of the S-step schedule run, from the encoded image (the posterior mean, times
  the scale factor) noised to the first of them (:func:`~diffnotes.pipeline.img2img_timesteps`). Strength 1 starts at
  the top of the schedule but, as in diffusers, from the noised image, not from pure noise. diffusers encodes a sample
  of the posterior; this pipeline its mean.
- Inpainting (``image`` and ``mask_image``, 1 where the digit is to be repainted, as diffusers'): RePaint-style, the
  known region of the latent is replaced, before every step, by the encoded image noised to that step's t.

The schedule's timesteps are diffusers' "leading" spacing (:func:`diffnotes.samplers.timesteps.subsequence`), in the
book's 1..T (diffusers' t plus one).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from diffnotes.checks import positive_int
from diffnotes.files import load_checked
from diffnotes.forward import q_sample
from diffnotes.latent import decode_latents
from diffnotes.nets.autoencoder import Autoencoder
from diffnotes.nets.guidance import guided
from diffnotes.nets.text import TextUNet, Tokenizer, text_unet_config
from diffnotes.pretrained import LDM_AUTOENCODER_WEIGHTS, WEIGHTS_DIR, digits_schedule
from diffnotes.samplers.ddim import check_eta, ddim_step
from diffnotes.samplers.timesteps import previous_timesteps, subsequence
from diffnotes.schedules import Schedule
from diffnotes.train_latent import autoencoder_from_record

# The shipped text-to-digit model (``python -m diffnotes.train_text``), with its provenance record beside it.
TEXT_WEIGHTS = WEIGHTS_DIR / "text_digits.pt"
# SHA-256 of the shipped weights; a file that does not match is refused.
TEXT_SHA256 = "fd7a78440bfcdbce81b3f7de51efbe8eefdb46e874c3b871380afa17c8f0e195"


def img2img_timesteps(T: int, num_inference_steps: int, strength: float, spacing: str = "leading") -> torch.Tensor:
    """The timesteps (book's 1..T, increasing) that img2img runs: the first init_timestep = min(int(S strength), S)
    of the S-step subsequence, i.e. diffusers' ``scheduler.timesteps[t_start:]`` with t_start = S - init_timestep.

    Raises:
        ValueError: if ``strength`` is not a number in [0, 1], or if it leaves no step to run (S strength < 1).
    """
    check_strength(strength)
    tau = subsequence(T, num_inference_steps, spacing)
    init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    if init_timestep == 0:
        raise ValueError(f"strength={strength} with num_inference_steps={num_inference_steps} runs no step "
                         "(int(steps * strength) = 0); raise either")
    return tau[:init_timestep]


def check_strength(strength: object) -> float:
    """``strength`` if it is a number in [0, 1]; else ValueError."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be a number in [0, 1], got {strength!r}")
    return float(strength)


@dataclass
class PipelineOutput:
    """What the pipeline returns: ``images`` (B, 1, 28, 28) in [-1, 1], the final ``latents`` and the ``prompts``."""

    images: torch.Tensor
    latents: torch.Tensor
    prompts: list[str]


class TextToDigitPipeline:
    """Stable Diffusion's pipeline at digit scale: ``pipe(prompt, negative_prompt=None, num_inference_steps=50,
    guidance_scale=7.5, generator=None, image=None, strength=0.8, mask_image=None, eta=0.0, progress=False)``.

    Args:
        model: the text-conditioned latent noise predictor.
        autoencoder: the chapter 13 autoencoder whose latents the model was trained on.
        scale: the latent scale factor the model was trained with.
        schedule: the training schedule (default :func:`diffnotes.pretrained.digits_schedule`).
        tokenizer: default ``Tokenizer(max_length=model.config.encoder.max_length)``.
    """

    def __init__(self, model: TextUNet, autoencoder: Autoencoder, scale: float, schedule: Schedule | None = None,
                 tokenizer: Tokenizer | None = None) -> None:
        self.model = model.eval()
        self.autoencoder = autoencoder.eval()
        self.scale = scale
        self.schedule = (schedule or digits_schedule()).to(dtype=torch.float32)
        self.tokenizer = tokenizer or Tokenizer(max_length=model.config.encoder.max_length)
        self.device = next(model.parameters()).device

    def encode_image(self, image: torch.Tensor, batch: int) -> torch.Tensor:
        """The scaled posterior mean of ``image`` ((28, 28), (1, 28, 28) or (B, 1, 28, 28) in [-1, 1]), for
        ``batch`` prompts."""
        size = self.autoencoder.config.image_size
        x = torch.as_tensor(image, dtype=torch.float32)
        x = x.reshape(1, 1, *x.shape) if x.dim() == 2 else x[None] if x.dim() == 3 else x
        if x.dim() != 4 or x.shape[1:] != (1, size, size) or x.shape[0] not in (1, batch):
            raise ValueError(f"image must be (28, 28), (1, 28, 28) or (B, 1, 28, 28) with B = 1 or the number of "
                             f"prompts ({batch}), size {size}; got {tuple(x.shape)}")
        with torch.no_grad():
            z = self.autoencoder.encode(x.to(self.device)).mean * self.scale
        return z.expand(batch, *z.shape[1:])

    def latent_mask(self, mask_image: torch.Tensor, batch: int) -> torch.Tensor:
        """The mask at the latents' resolution: 1 where any part of a latent's pixels is to be repainted."""
        m = torch.as_tensor(mask_image, dtype=torch.float32)
        m = m.reshape(1, 1, *m.shape) if m.dim() == 2 else m[None] if m.dim() == 3 else m
        size = self.autoencoder.config.image_size
        if m.dim() != 4 or m.shape[1:] != (1, size, size) or m.shape[0] not in (1, batch):
            raise ValueError(f"mask_image must have the shape of image, 28x28; got {tuple(m.shape)}")
        latent_size = self.autoencoder.config.latent_shape[-1]
        return (F.adaptive_max_pool2d(m, latent_size) > 0.5).float().expand(batch, -1, -1, -1).to(self.device)

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], negative_prompt: str | list[str] | None = None,
                 num_inference_steps: int = 50, guidance_scale: float = 7.5, generator: torch.Generator | None = None,
                 image: torch.Tensor | None = None, strength: float = 0.8, mask_image: torch.Tensor | None = None,
                 eta: float = 0.0, progress: bool = False) -> PipelineOutput:
        """Generate (or, given ``image``, alter or inpaint) one digit per prompt; see the module's docstring.

        Raises:
            ValueError: for a prompt with unknown words or too many of them, a guidance scale that is not a finite
                number, a strength outside [0, 1], an image or mask of the wrong size, a mask without an image, or
                a step count outside 1..T.
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise ValueError("prompt must be a string or a non-empty list of strings")
        positive_int("num_inference_steps", num_inference_steps)
        check_eta(eta)
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)) \
                or not math.isfinite(guidance_scale):
            raise ValueError(f"guidance_scale must be a finite number, got {guidance_scale!r}")
        if mask_image is not None and image is None:
            raise ValueError("mask_image needs the image whose other parts it keeps")
        batch, T = len(prompts), self.schedule.T
        ids = self.tokenizer(prompts).to(self.device)
        negatives = negative_prompt if negative_prompt is not None else ""
        null = self.tokenizer(negatives if isinstance(negatives, str) else list(negatives)).to(self.device)
        if null.shape[0] not in (1, batch):
            raise ValueError(f"negative_prompt must be one string or one per prompt ({batch}), got {null.shape[0]}")
        predictor = self.model if guidance_scale == 1 else guided(self.model, null, float(guidance_scale))

        shape = (batch, *self.autoencoder.config.latent_shape)
        noise = torch.randn(shape, generator=generator, device=self.device)
        known = mask = None
        if image is None:
            check_strength(strength)
            tau, z = subsequence(T, num_inference_steps, "leading"), noise
        else:
            known = self.encode_image(image, batch)
            tau = (img2img_timesteps(T, num_inference_steps, strength) if mask_image is None
                   else subsequence(T, num_inference_steps, "leading"))
            z = q_sample(self.schedule, known, int(tau[-1]), noise)
            if mask_image is not None:
                mask = self.latent_mask(mask_image, batch)
        steps = list(zip(reversed(tau.tolist()), reversed(previous_timesteps(tau).tolist())))
        if progress:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc="sampling", unit="step")
        for t, t_prev in steps:
            if mask is not None:
                fresh = torch.randn(shape, generator=generator, device=self.device)
                z = mask * z + (1 - mask) * q_sample(self.schedule, known, t, fresh)
            eps = predictor(z, torch.full((batch,), t, dtype=torch.int64, device=self.device), ids)
            draw = eta > 0 and t_prev > 0
            fresh = torch.randn(shape, generator=generator, device=self.device) if draw else None
            z = ddim_step(self.schedule, z, t, t_prev, eps, eta, fresh)
        if mask is not None:
            z = mask * z + (1 - mask) * known
        return PipelineOutput(decode_latents(self.autoencoder, z, self.scale), z, prompts)


def load_text_pipeline(weights: str | Path, autoencoder: str | Path, device: torch.device | str = "cpu",
                       expected_sha256: str | None = None) -> TextToDigitPipeline:
    """The pipeline of the weights exported by ``python -m diffnotes.train_text --export`` (their provenance record
    beside them gives the model's config and scale factor) and of the autoencoder they were trained on.

    Raises:
        FileNotFoundError: if a file or its provenance record is missing.
        ValueError: if the weights do not match their recorded hash, or the autoencoder is not the one recorded.
    """
    weights = Path(weights)
    record_path = weights.with_suffix(".json")
    if not record_path.is_file():
        raise FileNotFoundError(f"no provenance record {record_path} beside the weights; export them with"
                                " python -m diffnotes.train_text --export")
    record = json.loads(record_path.read_text())
    ae, ae_record = autoencoder_from_record(Path(autoencoder))
    if ae_record["sha256"] != record["autoencoder"]["sha256"]:
        trained_on = record["autoencoder"]
        raise ValueError(f"autoencoder {autoencoder} (SHA-256 {ae_record['sha256'][:12]}...) is not the one the model"
                         f" was trained on ({trained_on['weights']}, {trained_on['sha256'][:12]}...)")
    model = TextUNet(text_unet_config(record["model_config"]))
    if expected_sha256 is not None and expected_sha256 != record["sha256"]:
        raise ValueError(f"the provenance record {record_path} is not that of the weights expected "
                         f"(SHA-256 {expected_sha256[:12]}...)")
    state = load_checked(weights, record["sha256"], "export them again: python -m diffnotes.train_text --export")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return TextToDigitPipeline(model.to(device), ae.to(device), record["scale_factor"])


def load_shipped_pipeline(device: torch.device | str = "cpu") -> TextToDigitPipeline:
    """The pipeline of the shipped text-to-digit model and the shipped autoencoder, hash-checked, on ``device``."""
    return load_text_pipeline(TEXT_WEIGHTS, LDM_AUTOENCODER_WEIGHTS, device, expected_sha256=TEXT_SHA256)


def text_provenance() -> dict:
    """How the shipped text-to-digit model was made: the provenance record beside its weights."""
    return json.loads(TEXT_WEIGHTS.with_suffix(".json").read_text())
