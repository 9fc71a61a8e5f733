"""Chapter 15's pipeline: text -> tokens -> tau(y) -> guided latent DDIM -> decoder, img2img by diffusers' rule,
inpainting, and clear errors for bad input."""

import math

import pytest
import torch
from conftest import gen

from diffnotes.nets.autoencoder import Autoencoder
from diffnotes.nets.text import TextEncoderConfig, TextUNet, TextUNetConfig
from diffnotes.nets.unet import UNetConfig
from diffnotes.pipeline import TextToDigitPipeline, img2img_timesteps

TINY = TextUNetConfig(TextEncoderConfig(width=16, heads=2),
                      UNetConfig(in_channels=4, widths=(8, 16), attention=(False, True), groups=4, heads=2,
                                 context_dim=16))


def diffusers_get_timesteps(scheduler, num_inference_steps: int, strength: float) -> tuple[torch.Tensor, int]:
    """diffusers' ``StableDiffusionImg2ImgPipeline.get_timesteps``, line for line (its module imports transformers,
    which the test environment lacks): the scheduler's own timesteps from t_start on."""
    init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    t_start = max(num_inference_steps - init_timestep, 0)
    timesteps = scheduler.timesteps[t_start * scheduler.order:]
    return timesteps, num_inference_steps - t_start


@pytest.mark.parametrize("steps", [10, 50, 7])
@pytest.mark.parametrize("strength", [0.3, 0.5, 0.8, 1.0, 0.15])
def test_img2img_timesteps_are_diffusers_get_timesteps_plus_one(steps, strength):
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(num_train_timesteps=1000, timestep_spacing="leading", steps_offset=0)
    scheduler.set_timesteps(steps)
    if int(steps * strength) == 0:
        with pytest.raises(ValueError, match="runs no step"):
            img2img_timesteps(1000, steps, strength)
        return
    theirs, count = diffusers_get_timesteps(scheduler, steps, strength)
    ours = img2img_timesteps(1000, steps, strength)
    assert ours.flip(0).tolist() == (theirs + 1).tolist() and len(ours) == count


def test_img2img_at_sd_scale_runs_the_documented_steps():
    # Stable Diffusion's 50 leading steps: strength 0.8 runs 40 steps from diffusers' t = 781 (with steps_offset 1),
    # i.e. from 780 + 1 here, where steps_offset is 0.
    assert img2img_timesteps(1000, 50, 0.8)[-1] == 781 and len(img2img_timesteps(1000, 50, 0.8)) == 40
    assert len(img2img_timesteps(1000, 50, 0.5)) == 25


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    model = TextUNet(TINY)
    with torch.no_grad():  # the zero-initialised output layers would hide the text from an untrained model
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.05)
    return TextToDigitPipeline(model, Autoencoder(), scale=1.0)


def test_the_pipeline_makes_one_digit_per_prompt_reproducibly(pipe, capsys):
    out = pipe(["a thick seven", "a one"], num_inference_steps=3, generator=gen(0), progress=True)
    assert out.images.shape == (2, 1, 28, 28) and out.latents.shape == (2, 4, 7, 7)
    assert out.images.min() >= -1 and out.images.max() <= 1 and out.prompts == ["a thick seven", "a one"]
    again = pipe(["a thick seven", "a one"], num_inference_steps=3, generator=gen(0))
    torch.testing.assert_close(out.latents, again.latents)
    negative = pipe(["a thick seven", "a one"], "a thin seven", num_inference_steps=3, generator=gen(0))
    assert not torch.allclose(out.latents, negative.latents)
    unconditional = pipe("", num_inference_steps=2, guidance_scale=0.0, generator=gen(0), eta=1.0)
    assert unconditional.images.shape == (1, 1, 28, 28)


def test_img2img_and_inpainting_start_from_the_image(pipe):
    image = torch.zeros(28, 28) - 1
    image[4:24, 12:16] = 1
    out = pipe("a one", image=image, strength=0.5, num_inference_steps=4, generator=gen(1))
    assert out.images.shape == (1, 1, 28, 28)
    keep_all = pipe("a one", image=image, mask_image=torch.zeros(28, 28), num_inference_steps=3, generator=gen(1))
    torch.testing.assert_close(keep_all.latents, pipe.encode_image(image, 1))
    mask = torch.zeros(28, 28)
    mask[:, 14:] = 1
    half = pipe("a one", image=image, mask_image=mask, num_inference_steps=3, generator=gen(1))
    known = pipe.encode_image(image, 1)
    torch.testing.assert_close(half.latents[..., :3], known[..., :3])
    assert not torch.allclose(half.latents[..., 4:], known[..., 4:])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"prompt": "a purple seven"}, "outside the vocabulary: purple"),
    ({"prompt": " ".join(["seven"] * 20)}, "at most max_length - 1"),
    ({"prompt": []}, "non-empty list"),
    ({"guidance_scale": math.nan}, "guidance_scale must be a finite number"),
    ({"guidance_scale": "7.5"}, "guidance_scale must be a finite number"),
    ({"strength": 1.5, "image": torch.zeros(28, 28)}, "strength must be a number in \\[0, 1\\]"),
    ({"strength": -0.1}, "strength must be a number in \\[0, 1\\]"),
    ({"image": torch.zeros(32, 32)}, "image must be"),
    ({"mask_image": torch.zeros(28, 28)}, "mask_image needs the image"),
    ({"num_inference_steps": 0}, "num_inference_steps must be a positive integer"),
    ({"negative_prompt": ["a one"] * 3}, "negative_prompt must be one string or one per prompt"),
])
def test_bad_input_is_a_clear_error(pipe, kwargs, message):
    args = {"prompt": "a seven", "num_inference_steps": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        pipe(**args)
