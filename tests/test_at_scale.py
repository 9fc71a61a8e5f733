"""Stable Diffusion at scale (diffnotes.at_scale): meta-device builds and their parameter counts against diffusers and
transformers, the FLOP counter against counts by hand, the cost arithmetic, the offline pipeline search, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffnotes import at_scale
from diffnotes.nets.autoencoder import Autoencoder, AutoencoderConfig
from diffnotes.nets.text import TextUNet
from diffnotes.train_text import TEXT_UNET


@pytest.fixture(scope="module")
def hf():
    """diffusers' and transformers' classes (skipped where either is not installed)."""
    diffusers = pytest.importorskip("diffusers")
    transformers = pytest.importorskip("transformers")
    return {"UNet": diffusers.UNet2DConditionModel, "AutoencoderKL": diffusers.AutoencoderKL,
            "CLIPTextModel": transformers.CLIPTextModel, "CLIPTextConfig": transformers.CLIPTextConfig}


def test_stable_diffusion_15_parts_have_their_published_sizes(hf):
    unet = at_scale.build_on_meta(hf["UNet"], at_scale.SD15_UNET)
    vae = at_scale.build_on_meta(hf["AutoencoderKL"], at_scale.SD15_AUTOENCODER)
    text = at_scale.build_on_meta(hf["CLIPTextModel"], hf["CLIPTextConfig"](**at_scale.SD15_TEXT))
    assert at_scale.count_parameters(unet) == 859_520_964  # diffusers' num_parameters() docstring for SD 1.5
    assert at_scale.count_parameters(unet) == unet.num_parameters()
    assert at_scale.count_parameters(vae) == 83_653_863
    assert at_scale.count_parameters(text) == 123_060_480
    assert all(p.is_meta for m in (unet, vae, text) for p in m.parameters())


def test_stable_diffusion_21_parts(hf):
    unet = at_scale.build_on_meta(hf["UNet"], at_scale.SD21_UNET)
    text = at_scale.build_on_meta(hf["CLIPTextModel"], hf["CLIPTextConfig"](**at_scale.SD21_TEXT))
    assert at_scale.count_parameters(unet) == 865_910_724
    assert at_scale.count_parameters(text) == 340_387_840
    assert text.config.num_hidden_layers == 23 and text.config.hidden_size == 1024


def test_every_configuration_has_a_source():
    for name in ("SD15_UNET", "SD15_AUTOENCODER", "SD15_TEXT", "SD21_UNET", "SD21_TEXT", "SD1_TRAINING"):
        assert at_scale.SOURCES[name].startswith("https://")


def test_linear_and_convolution_flops_are_2mnk():
    """One multiply-add counts 2: a (B, n) x (n, k) product is 2 B n k FLOPs, a convolution 2 per weight per output."""
    linear = nn.Linear(30, 20)
    assert at_scale.step_flops(_Call(linear), (7, 30)) == {"linear": 2 * 7 * 30 * 20, "total": 2 * 7 * 30 * 20}
    conv = nn.Conv2d(3, 5, 3, padding=1)
    expected = 2 * (3 * 3 * 3) * 5 * (8 * 8)
    assert at_scale.step_flops(_Call(conv), (3, 8, 8))["convolution"] == expected


def test_attention_flops_are_counted_on_the_meta_device():
    """Q K^T and A V: 2 n m d each, per head; on CPU tensors the fused kernel would count zero."""
    heads, n, m, d = 4, 49, 12, 16
    flops = at_scale.step_flops(_Attend(heads, m, d), (heads, n, d))
    assert flops["attention"] == 2 * (2 * heads * n * m * d) == flops["total"]


def test_the_twin_unet_counts_the_same_on_meta_and_moved_there():
    model = TextUNet(TEXT_UNET)
    on_cpu = at_scale.step_flops(model.unet, (4, 7, 7), (12, 64))
    assert on_cpu["attention"] > 0 and on_cpu["total"] == sum(v for k, v in on_cpu.items() if k != "total")
    assert all(not p.is_meta for p in model.parameters())  # the model itself was left alone
    assert at_scale.step_flops(model.unet.to("meta"), (4, 7, 7), (12, 64)) == on_cpu


def test_pixel_space_only_changes_channels_and_size():
    pixel = at_scale.pixel_space(at_scale.SD15_UNET)
    assert {k for k in pixel if pixel[k] != at_scale.SD15_UNET[k]} == {"in_channels", "out_channels", "sample_size"}
    assert (pixel["in_channels"], pixel["sample_size"]) == (3, 512)
    with pytest.raises(ValueError, match="size"):
        at_scale.pixel_space(at_scale.SD15_UNET, size=0)


def test_cost_arithmetic():
    t = at_scale.SD1_TRAINING
    assert at_scale.wall_clock_days(t["gpu_hours"], t["gpus"]) == pytest.approx(150_000 / 256 / 24)
    assert at_scale.dollars_per_gpu_hour(t["dollars"], t["gpu_hours"]) == pytest.approx(4.0)
    assert at_scale.energy_kwh(t["gpu_hours"], at_scale.A100_WATTS) == pytest.approx(37_500)
    assert 10 < at_scale.wall_clock_days(t["gpu_hours"], t["gpus"]) < 30
    assert at_scale.AWS_P4D_DOLLARS_PER_HOUR / 8 == pytest.approx(4.1, abs=0.01)


@pytest.mark.parametrize("call", [
    lambda: at_scale.wall_clock_days(0, 256), lambda: at_scale.wall_clock_days(100, 0),
    lambda: at_scale.wall_clock_days(100, 2.5), lambda: at_scale.dollars_per_gpu_hour(-1, 10),
    lambda: at_scale.dollars_per_gpu_hour(10, math.nan), lambda: at_scale.energy_kwh(True, 250),
])
def test_cost_arithmetic_refuses_non_positive_input(call):
    with pytest.raises(ValueError, match="must be a positive"):
        call()


def test_bad_input():
    with pytest.raises(TypeError, match="nn.Module class"):
        at_scale.build_on_meta(dict, {})
    with pytest.raises(TypeError, match="nn.Module"):
        at_scale.count_parameters("unet")
    unet = TextUNet(TEXT_UNET).unet
    for shape in [(), (4, 0, 7), "4x7x7", (4, 7.0, 7)]:
        with pytest.raises(ValueError, match="sample_shape"):
            at_scale.step_flops(unet, shape, (12, 64))
    with pytest.raises(ValueError, match="context_shape"):
        at_scale.step_flops(unet, (4, 7, 7), (12, -64))
    with pytest.raises(ValueError, match="timestep"):
        at_scale.step_flops(unet, (4, 7, 7), (12, 64), timestep=-1)


def test_a_module_that_leaves_the_meta_device_is_refused():
    class Pinned(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(2, device="cpu"))

    with pytest.raises(RuntimeError, match="off the meta device"):
        at_scale.build_on_meta(Pinned, {})


def test_find_local_pipeline_in_an_empty_cache_is_none(tmp_path, monkeypatch):
    monkeypatch.delenv(at_scale.PIPELINE_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    assert at_scale.find_local_pipeline() is None


def test_find_local_pipeline_finds_a_cached_snapshot_and_the_named_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(at_scale.PIPELINE_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    repo = tmp_path / "hub" / "models--runwayml--stable-diffusion-v1-5"
    (repo / "snapshots" / "old").mkdir(parents=True)  # an incomplete snapshot is passed over
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "model_index.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123\n")
    assert at_scale.find_local_pipeline() == repo / "snapshots" / "abc123"
    assert at_scale.find_local_pipeline(["stabilityai/stable-diffusion-2-1"]) is None
    monkeypatch.setenv(at_scale.PIPELINE_ENV, str(repo / "snapshots" / "abc123"))
    assert at_scale.find_local_pipeline([]) == repo / "snapshots" / "abc123"
    monkeypatch.setenv(at_scale.PIPELINE_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        at_scale.find_local_pipeline()


def test_the_twin_scale_comes_from_the_modules_and_records():
    records = at_scale.twin_records()
    assert records["model_name"] in ("text_digits", "ldm_digits")
    model, autoencoder = TextUNet(TEXT_UNET), Autoencoder(AutoencoderConfig())
    twin = at_scale.twin_scale(model, autoencoder, records)
    assert twin.latent == (4, 7, 7) and twin.image == (1, 28, 28)
    assert twin.unet_parameters + twin.text_parameters == sum(p.numel() for p in model.parameters())
    assert twin.autoencoder_parameters == records["autoencoder"]["parameters"] == 402_041
    assert twin.attention_sides == (4,) and twin.text == (2, 64, 12)
    table = at_scale.comparison_table({"twin": twin, "again": twin})
    assert "7x7x4 (f = 4)" in table and "1,200,708" in table and len(table.splitlines()) == 1 + len(at_scale.ROWS)


def test_twin_records_need_a_model_record(tmp_path):
    (tmp_path / "ldm_autoencoder.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="provenance record"):
        at_scale.twin_records(tmp_path)
    (tmp_path / "text_digits.json").write_text('{"seconds": 1}')
    assert at_scale.twin_records(tmp_path)["model_name"] == "text_digits"


class _Call(nn.Module):
    """Calls ``layer(x)`` with the (x, t) of :func:`diffnotes.at_scale.step_flops`, dropping t."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x, t):
        return self.layer(x)


class _Attend(nn.Module):
    """Attention of (1, heads, n, d) queries to m learned keys and values: its only FLOPs are the two products."""

    def __init__(self, heads: int, m: int, d: int) -> None:
        super().__init__()
        self.kv = nn.Parameter(torch.zeros(2, 1, heads, m, d))

    def forward(self, q, t):
        return F.scaled_dot_product_attention(q, self.kv[0], self.kv[1])
