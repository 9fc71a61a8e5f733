"""The compact U-Net (diffnotes.nets.unet) and what inspects it (diffnotes.nets.architecture, diffnotes.plotting.unet)."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_UNET
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from diffnotes.nets import architecture
from diffnotes.nets.embeddings import timestep_embedding
from diffnotes.nets.unet import Attention, ResBlock, UNet, UNetConfig, count_parameters

TINY = dict(widths=TINY_UNET.widths, attention=TINY_UNET.attention, groups=TINY_UNET.groups, heads=TINY_UNET.heads)


def model_with_head(config: UNetConfig, seed: int = 0) -> UNet:
    """A U-Net whose zero-initialised output convolution is replaced by random weights, so the output is not 0."""
    torch.manual_seed(seed)
    model = UNet(config)
    nn.init.normal_(model.head[-1].weight, std=0.1)
    nn.init.normal_(model.head[-1].bias, std=0.1)
    return model


def inputs(config: UNetConfig, h: int, w: int, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(batch, config.in_channels, h, w, generator=g)
    t = torch.randint(1, 1001, (batch,), generator=g)
    return x_t, t


# ---------------------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize(
    "config, sizes",
    [
        (UNetConfig(), [(28, 28), (8, 8), (32, 32)]),
        (UNetConfig(in_channels=3, **TINY), [(8, 8), (16, 16), (28, 28), (32, 32), (6, 10)]),
        (UNetConfig(widths=(8, 16, 16, 32), attention=(False, False, True, True), groups=8, heads=4), [(16, 24)]),
        (UNetConfig(in_channels=3, widths=(16,), attention=(True,), res_blocks=2, groups=4, heads=4), [(5, 7)]),
    ],
)
def test_output_has_the_shape_of_the_input(config, sizes):
    model = model_with_head(config)
    for h, w in sizes:
        x_t, t = inputs(config, h, w)
        assert model(x_t, t).shape == x_t.shape


def test_conditioned_outputs_have_the_shape_of_the_input():
    x_t, t = inputs(UNetConfig(), 28, 28, batch=3)
    labelled = model_with_head(UNetConfig(num_classes=10))
    assert labelled(x_t, t, torch.tensor([0, 9, 10])).shape == x_t.shape
    tokens = model_with_head(UNetConfig(context_dim=12))
    for length in (1, 5, 77):
        assert tokens(x_t, t, torch.randn(3, length, 12)).shape == x_t.shape


def test_no_label_index_is_the_default_and_differs_from_a_label():
    model = model_with_head(UNetConfig(num_classes=10, **TINY))
    x_t, t = inputs(model.config, 8, 8)
    with torch.no_grad():
        none = model(x_t, t)
        no_label = model(x_t, t, torch.tensor([10, 10]))
        three = model(x_t, t, torch.tensor([3, 3]))
    assert torch.equal(none, no_label)
    assert (three - no_label).abs().max() > 1e-3
    assert model.label_emb.num_embeddings == 11


def test_zero_head_gives_zero_output_and_only_the_head_learns_first():
    torch.manual_seed(0)
    model = UNet(UNetConfig(num_classes=10))
    x_t, t = inputs(model.config, 28, 28)
    out = model(x_t, t, torch.tensor([1, 10]))
    assert torch.equal(out, torch.zeros_like(x_t))
    # With the last convolution at zero, d(output)/d(inner parameter) = 0: only the head has a gradient at first.
    (out * torch.randn_like(out)).sum().backward()
    for name, p in model.named_parameters():
        has_gradient = p.grad is not None and p.grad.abs().sum() > 0
        assert has_gradient == name.startswith("head.2"), name


@pytest.mark.parametrize("extra", [{}, {"num_classes": 3}, {"context_dim": 6}])
def test_gradients_reach_every_parameter(extra):
    model = model_with_head(UNetConfig(**TINY, **extra))
    x_t, t = inputs(model.config, 8, 8, batch=4)
    cond = {"num_classes": torch.tensor([0, 1, 2, 3]), "context_dim": torch.randn(4, 3, 6)}.get(next(iter(extra), ""))
    out = model(x_t, t, cond)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ---------------------------------------------------------------------------------------------- time embedding
def test_time_embedding_formula_at_known_timesteps():
    emb = timestep_embedding(torch.tensor([0, 1, 1000]), 4)
    # half = 2, frequencies 10000**(-0/2) = 1 and 10000**(-1/2) = 0.01; sines first, then cosines.
    expected = torch.tensor(
        [
            [0.0, 0.0, 1.0, 1.0],
            [math.sin(1), math.sin(0.01), math.cos(1), math.cos(0.01)],
            [math.sin(1000), math.sin(10), math.cos(1000), math.cos(10)],
        ]
    )
    # float32 arguments up to 1000: the angle's rounding error is about 1000 * 6e-8, so 1e-4 is a safe bound.
    torch.testing.assert_close(emb, expected, atol=1e-4, rtol=0)


def test_time_embedding_has_norm_sqrt_half_and_separates_timesteps():
    t = torch.arange(1, 1001)
    emb = timestep_embedding(t, 32).double()
    torch.testing.assert_close(emb.pow(2).sum(1), torch.full((1000,), 16.0, dtype=torch.float64))  # sin^2 + cos^2
    distances = torch.cdist(emb, emb) + torch.eye(1000, dtype=torch.float64) * 100
    assert distances.min() > 0.1  # no two timesteps in 1..1000 share an embedding
    with pytest.raises(ValueError, match="dim must be even"):
        timestep_embedding(t, 7)


def test_different_timesteps_give_different_outputs_after_one_training_step():
    torch.manual_seed(0)
    model = UNet(UNetConfig(**TINY))
    x_t = torch.randn(2, 1, 8, 8)
    t_early, t_late = torch.tensor([1, 1]), torch.tensor([900, 900])
    assert torch.equal(model(x_t, t_early), model(x_t, t_late))  # both zero at initialisation
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    F.mse_loss(model(x_t, t_early), torch.randn_like(x_t)).backward()
    optimiser.step()
    with torch.no_grad():
        assert (model(x_t, t_early) - model(x_t, t_late)).abs().max() > 1e-4


# ------------------------------------------------------------------------------------------------- attention
def test_attention_is_softmax_of_scaled_dot_products():
    torch.manual_seed(0)
    for context_dim in (None, 5):
        attn = Attention(channels=8, groups=2, heads=2, context_dim=context_dim)
        x = torch.randn(3, 8, 4, 2)
        context = None if context_dim is None else torch.randn(3, 6, 5)
        tokens = attn.norm(x).flatten(2).transpose(1, 2)  # (B, 8 positions, 8 channels)
        source = tokens if context is None else context
        q = attn.q(tokens)
        k, v = attn.kv(source).chunk(2, dim=-1)
        heads = []
        for h in range(2):  # per head: softmax(Q K^T / sqrt(d)) V with d = 4 channels
            part = slice(4 * h, 4 * h + 4)
            weights = torch.softmax(q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(4), dim=-1)
            heads.append(weights @ v[..., part])
        y = attn.out(torch.cat(heads, dim=-1)).transpose(1, 2).reshape(3, 8, 4, 2)
        torch.testing.assert_close(attn(x, context), x + y, atol=1e-5, rtol=1e-5)


def test_cross_attention_depends_on_the_tokens_but_not_their_order():
    model = model_with_head(UNetConfig(context_dim=6, **TINY))
    x_t, t = inputs(model.config, 8, 8)
    g = torch.Generator().manual_seed(1)
    tokens, other = torch.randn(2, 5, 6, generator=g), torch.randn(2, 5, 6, generator=g)
    with torch.no_grad():
        out = model(x_t, t, tokens)
        assert (model(x_t, t, other) - out).abs().max() > 1e-3
        # No positional encoding on the tokens: attention sees them as a set, so a permutation changes nothing.
        torch.testing.assert_close(model(x_t, t, tokens[:, [3, 1, 4, 0, 2]]), out, atol=1e-5, rtol=1e-5)


# -------------------------------------------------------------------------------------------- parameter counts
def res_params(c_in, c_out, emb):
    """ResBlock by hand: two norms, two 3x3 convs, the embedding's linear map, a 1x1 skip when widths differ."""
    skip = c_in * c_out + c_out if c_in != c_out else 0
    return 2 * c_in + (9 * c_in * c_out + c_out) + (emb * c_out + c_out) + 2 * c_out + (9 * c_out**2 + c_out) + skip


def attn_params(c, context_dim=None):
    """Attention by hand: GroupNorm, q (C -> C), kv (D -> 2C), out (C -> C), each with a bias."""
    d = context_dim or c
    return 2 * c + (c * c + c) + (2 * c * d + 2 * c) + (c * c + c)


def test_parameter_count_matches_a_hand_computation():
    emb = 4 * 8  # the time embedding is 4 x widths[0] wide
    time_mlp = (8 * emb + emb) + (emb * emb + emb)
    stem, head = 1 * 8 * 9 + 8, 2 * 8 + (8 * 1 * 9 + 1)
    down = res_params(8, 8, emb) + (9 * 8 * 8 + 8) + res_params(8, 16, emb) + attn_params(16)
    mid = res_params(16, 16, emb) + attn_params(16) + res_params(16, 16, emb)
    # Decoder: level 1 concatenates the outputs of down.1.0 (16) then downsample.0 (8); level 0 those of down.0.0
    # (8) then the stem (8).
    up = res_params(32, 16, emb) + res_params(24, 16, emb) + 2 * attn_params(16) + (9 * 16 * 16 + 16)
    up += res_params(24, 8, emb) + res_params(16, 8, emb)
    total = time_mlp + stem + down + mid + up + head
    assert count_parameters(UNet(UNetConfig(**TINY))) == total == 44_969
    assert count_parameters(UNet(UNetConfig(num_classes=3, **TINY))) == total + 4 * emb
    # Cross-attention sits beside the four self-attentions at the attending level and in the middle.
    assert count_parameters(UNet(UNetConfig(context_dim=6, **TINY))) == total + 4 * attn_params(16, context_dim=6)
    assert count_parameters(ResBlock(8, 16, emb, groups=4, dropout=0.0)) == res_params(8, 16, emb)


def test_parameter_counts_per_part_sum_to_the_total():
    for config in (UNetConfig(), UNetConfig(num_classes=10), UNetConfig(context_dim=768)):
        model = UNet(config)
        counts = architecture.parameter_counts(model)
        assert list(counts) == ["embedding", "encoder", "middle", "decoder", "head"]
        assert sum(counts.values()) == count_parameters(model) == sum(p.numel() for p in model.parameters())
    assert architecture.parameter_counts(UNet()) == {
        "embedding": 20_736, "encoder": 234_368, "middle": 181_504, "decoder": 675_840, "head": 353
    }


def test_parameters_by_name_groups_every_parameter_once():
    model = UNet(UNetConfig(context_dim=6, **TINY))
    groups = architecture.parameters_by_name(model, ("res", "self_attn", "cross_attn", "label_emb"))
    assert list(groups) == ["res", "self_attn", "cross_attn", "label_emb", "other"]
    assert sum(groups.values()) == count_parameters(model)
    assert groups["res"] == sum(count_parameters(m) for m in model.modules() if isinstance(m, ResBlock))
    assert groups["cross_attn"] == 4 * attn_params(16, context_dim=6) and groups["label_emb"] == 0


# ---------------------------------------------------------------------------------------------- shape table
@pytest.mark.parametrize(
    "config, size, cond",
    [
        (UNetConfig(), 28, None),
        (UNetConfig(context_dim=6, **TINY), 8, torch.randn(2, 3, 6)),
        (UNetConfig(widths=(8, 16, 16), attention=(False, True, True), res_blocks=2, groups=4, heads=2), 16, None),
    ],
)
def test_shape_table_follows_the_tensor_through_the_u(config, size, cond):
    model = model_with_head(config)
    x_t, t = inputs(config, size, size)
    rows = architecture.shape_table(model, x_t, t, cond)
    levels, n = len(config.widths), config.res_blocks
    assert len(rows) == 1 + levels * n + (levels - 1) + 2 + levels * (n + 1) + (levels - 1) + 1
    assert rows[0].in_shape == tuple(x_t.shape[1:]) and rows[-1].out_shape == tuple(x_t.shape[1:])
    by_name = {row.name: row for row in rows}
    opened = ["stem"]
    for before, row in zip(rows, rows[1:]):
        if row.skip_from is None:
            assert row.in_shape == before.out_shape, row.name
        else:  # the decoder block's input: the previous output, then the skip, concatenated along channels
            skip = by_name[row.skip_from].out_shape
            assert row.in_shape == (before.out_shape[0] + skip[0], *skip[1:])
            assert skip[1:] == before.out_shape[1:]
            assert row.skip_from == opened.pop()  # skips are consumed last in, first out
        if row.part == "encoder":
            opened.append(row.name)
    assert rows[0].part == "encoder" and rows[0].name == "stem"
    assert not opened  # every encoder output is used exactly once
    embedding = architecture.parameter_counts(model)["embedding"]
    assert sum(row.params for row in rows) + embedding == count_parameters(model)
    for row in rows:
        level = round(math.log2(size / row.out_shape[1]))
        in_attending_level = row.part != "middle" and row.kind.startswith("res") and config.attention[level]
        attending = row.name == "mid.0" or in_attending_level  # the middle: attention in its first block only
        assert ("attn" in row.kind) == attending, row.name
        assert ("cross" in row.kind) == (attending and config.context_dim is not None), row.name


def test_receptive_field_formula_and_brute_force():
    assert architecture.receptive_field([]) == 1
    assert architecture.receptive_field([(3, 1)] * 5) == 11
    assert architecture.receptive_field([(3, 1), (3, 2), (3, 1)]) == 1 + 2 + 2 + 2 * 2
    with pytest.raises(ValueError, match="convs"):
        architecture.receptive_field([(3, 0)])
    # Brute force: the input pixels that reach one output position are those with a non-zero gradient. GroupNorm's
    # statistics couple every position (through the mean and scale only), so we take the norms out for this check.
    torch.manual_seed(0)
    model = UNet()
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.GroupNorm):
                setattr(parent, name, nn.Identity())
    x_t = torch.randn(1, 1, 28, 28, requires_grad=True)
    rows = architecture.shape_table(model, x_t.detach(), torch.tensor([10]))
    assert [row.receptive_field for row in rows[:8]] == [3, 7, 9, 17, 21, 37, 53, 69]
    kept = {}
    names = ("stem", "down.0.0", "downsample.0", "down.1.0")
    handles = [model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: kept.update({n: o})) for n in names]
    model(x_t, torch.tensor([10]))
    for handle in handles:
        handle.remove()
    for row in rows[:4]:
        out = kept[row.name]
        centre = out.shape[-1] // 2
        (gradient,) = torch.autograd.grad(out[0, :, centre, centre].sum(), x_t, retain_graph=True)
        reached_rows = gradient[0, 0].abs().sum(1).nonzero()
        assert len(reached_rows) == row.receptive_field, row.name


def test_attention_and_convolution_costs():
    assert architecture.attention_macs(49, 49, 64) == 2 * 49 * 49 * 64
    assert architecture.conv_macs(7, 7, 64, 64) == 7 * 7 * 64 * 64 * 9
    # Count the floating-point operations (2 per multiply-add) of attention written out with matrix products.
    q, k, v = torch.randn(1, 49, 16), torch.randn(1, 77, 16), torch.randn(1, 77, 16)
    with FlopCounterMode(display=False) as counter:
        torch.softmax(q @ k.transpose(1, 2) / 4, dim=-1) @ v
    assert counter.get_total_flops() == 2 * architecture.attention_macs(49, 77, 16)
    with FlopCounterMode(display=False) as counter:
        nn.Conv2d(8, 16, 3, padding=1, bias=False)(torch.randn(1, 8, 7, 5))
    assert counter.get_total_flops() == 2 * architecture.conv_macs(7, 5, 8, 16)
    with pytest.raises(ValueError, match="channels"):
        architecture.attention_macs(4, 4, 0)
    with pytest.raises(ValueError, match="c_in"):
        architecture.conv_macs(4, 4, 0, 3)


# -------------------------------------------------------------------------------------------------- diffusers
def test_same_network_as_diffusers_unet2dmodel():
    diffusers = pytest.importorskip("diffusers")
    theirs = diffusers.UNet2DModel(**architecture.diffusers_kwargs(UNetConfig()))
    assert count_parameters(UNet()) == sum(p.numel() for p in theirs.parameters()) == 1_112_801
    deeper = UNetConfig(widths=(8, 16, 16), attention=(False, True, True), res_blocks=2, groups=4, heads=2)
    for config in (UNetConfig(num_classes=3, **TINY), deeper):
        ours = model_with_head(config)
        theirs = diffusers.UNet2DModel(**architecture.diffusers_kwargs(config))
        theirs.load_state_dict(architecture.diffusers_state_dict(ours), strict=True)
        x_t, t = inputs(config, 16, 16, batch=3)
        labels = torch.tensor([0, 2, 3]) if config.num_classes else None
        with torch.no_grad():
            # float32 through a dozen layers with outputs of order 1: 1e-5 is a few hundred rounding errors.
            expected = theirs(x_t, t, class_labels=labels).sample
            torch.testing.assert_close(ours(x_t, t, labels), expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="context_dim"):
        architecture.diffusers_kwargs(UNetConfig(context_dim=8))
    with pytest.raises(ValueError, match="attending levels"):
        architecture.diffusers_kwargs(UNetConfig(widths=(8, 16), attention=(True, True), groups=4, heads=2))


# ------------------------------------------------------------------------------------------------- bad input
def test_bad_input_raises_value_error_naming_the_argument():
    model = UNet(UNetConfig(**TINY))
    x_t, t = inputs(model.config, 8, 8)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 1, H, W\)"):
        model(torch.zeros(2, 3, 8, 8), t)
    assert model(torch.zeros(2, 1, 8, 7), t).shape == (2, 1, 8, 7)  # padded to 8 x 8 inside, cropped back
    with pytest.raises(ValueError, match=r"t must have shape \(B,\)"):
        model(x_t, torch.tensor(5))
    with pytest.raises(ValueError, match="cond must be None"):
        model(x_t, t, torch.tensor([1, 2]))
    tokens = UNet(UNetConfig(context_dim=6, **TINY))
    with pytest.raises(ValueError, match=r"cond must be tokens of shape \(2, L, 6\)"):
        tokens(x_t, t)  # tokens are required
    with pytest.raises(ValueError, match=r"cond must be tokens of shape \(2, L, 6\)"):
        tokens(x_t, t, torch.zeros(2, 3, 5))  # wrong width
    with pytest.raises(ValueError, match=r"cond must be tokens of shape \(2, L, 6\)"):
        tokens(x_t, t, torch.zeros(3, 3, 6))  # wrong batch
    labelled = UNet(UNetConfig(num_classes=3, **TINY))
    for labels in (torch.tensor([0, 4]), torch.tensor([-1, 0]), torch.tensor([0.0, 1.0]), torch.tensor([1, 2, 3])):
        with pytest.raises(ValueError, match="cond must be .* integer labels in 0..num_classes=3"):
            labelled(x_t, t, labels)
    bad_configs = [
        (dict(widths=(8, 12), attention=(False, True), groups=8), "groups=8 must divide"),
        (dict(widths=(8, 12), attention=(False, True), groups=4, heads=8), "heads=8 must divide"),
        (dict(widths=(8, 16), attention=(False,)), "widths and attention"),
        (dict(widths=(6, 12), attention=(False, True), groups=1, heads=3, in_channels=0), "in_channels"),
        (dict(widths=(3, 6), attention=(False, True), groups=3, heads=3), r"widths\[0\]=3"),
        (dict(dropout=1.0), "dropout"),
        (dict(num_classes=10, context_dim=8), "num_classes or context_dim"),
        (dict(num_classes=0), "num_classes"),
    ]
    for kwargs, message in bad_configs:
        with pytest.raises(ValueError, match=message):
            UNetConfig(**kwargs)


def test_plots_draw_one_box_per_block_and_reject_bad_input():
    from diffnotes.plotting.unet import draw_unet, plot_timestep_embedding

    config = UNetConfig(**TINY)
    rows = architecture.shape_table(UNet(config), *inputs(config, 8, 8))
    fig = draw_unet(rows)
    boxes = [p for p in fig.axes[0].patches if type(p).__name__ == "FancyBboxPatch"]
    assert len(boxes) == len(rows)
    t = torch.arange(1, 101)
    plot_timestep_embedding(timestep_embedding(t, 8), t, zoom=10)
    with pytest.raises(ValueError, match="rows"):
        draw_unet([])
    with pytest.raises(ValueError, match="zoom"):
        plot_timestep_embedding(timestep_embedding(t, 8), t, zoom=0)
