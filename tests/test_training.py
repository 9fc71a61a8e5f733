"""The training loop (diffnotes.training): learning, exact resume, atomic and safe checkpoints."""

import math
import os

import pytest
import torch
from conftest import TINY_UNET

from diffnotes import schedules
from diffnotes.checkpoints import read_checkpoint, save_checkpoint
from diffnotes.nets.unet import UNet, UNetConfig
from diffnotes.objective import simple_loss
from diffnotes.training import TrainConfig, ema_decay_at, ema_update, train

TINY = TINY_UNET


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return UNet(TINY)


def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(16, 1, 8, 8, generator=g) * 2 - 1


def config(**kw):
    base = dict(steps=12, batch_size=8, warmup_steps=2, log_every=2, checkpoint_every=4, ema_decay=0.5, lr=1e-3)
    return TrainConfig(**{**base, **kw})


def test_loss_decreases_on_a_fixed_batch():
    s = schedules.linear(T=100)
    # A fixed batch: training on it, the loss averaged over the last steps must fall well below the first steps'.
    images = data()[:8]
    state = train(tiny_model(), images, s, config(steps=200, log_every=20, lr=3e-3), progress=False)
    losses = state.history["loss"]
    assert losses[0] > 0.8  # the zero-initialised head starts at E||eps||^2 = 1
    assert losses[-1] < 0.6 * losses[0]


def test_ema_tracks_the_trained_model_not_its_initial_weights():
    """After training, the EMA model's loss is close to the trained model's, not to the initial zero predictor's."""
    s = schedules.linear(T=100)
    images = data()[:8]
    state = train(tiny_model(), images, s, config(steps=200, log_every=20, lr=3e-3, ema_decay=0.999), progress=False)
    g = torch.Generator().manual_seed(1)
    x0 = images.repeat(8, 1, 1, 1)
    t = torch.randint(1, 101, (x0.shape[0],), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        model_loss = float(simple_loss(state.model, s, x0, t, eps))
        ema_loss = float(simple_loss(state.ema, s, x0, t, eps))
    # Without the warm-up, 0.999**200 = 82 % of the average is the initial network and its loss stays near 1.
    assert ema_loss < 1.5 * model_loss < 0.9
    assert ema_decay_at(TrainConfig(ema_decay=0.999), 0) == 0.1
    assert ema_decay_at(TrainConfig(ema_decay=0.999), 100_000) == 0.999


class Interrupted(Exception):
    """Stands for a kernel stopped in the middle of a run."""


def interrupt_at(step):
    def callback(state):
        if state.step == step:
            raise Interrupted

    return callback


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    s = schedules.linear(T=50)
    full = train(tiny_model(), data(), s, config(), progress=False)

    path = tmp_path / "run.pt"
    with pytest.raises(Interrupted):
        train(tiny_model(), data(), s, config(), checkpoint=path, progress=False, callback=interrupt_at(6))
    assert read_checkpoint(path)["step"] == 4  # the last checkpoint before the interruption
    resumed = train(tiny_model(seed=99), data(), s, config(), checkpoint=path, progress=False)

    assert resumed.step == full.step == 12
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(full.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)
    assert full.history == resumed.history


def test_an_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    s = schedules.linear(T=50)
    path = tmp_path / "run.pt"
    state = train(tiny_model(), data(), s, config(steps=4), checkpoint=path, progress=False)
    before = path.read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, state, config(steps=4))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.pt"]  # no temporary file left behind


def test_corrupted_checkpoint_gets_a_clear_error(tmp_path):
    s = schedules.linear(T=50)
    path = tmp_path / "run.pt"
    train(tiny_model(), data(), s, config(steps=4), checkpoint=path, progress=False)
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a full disk
    with pytest.raises(ValueError, match="corrupted"):
        train(tiny_model(), data(), s, config(), checkpoint=path, progress=False)
    (tmp_path / "other.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupted"):
        read_checkpoint(tmp_path / "other.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a diffnotes checkpoint"):
        read_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "missing.pt")


def test_mismatched_checkpoint_gets_a_clear_error(tmp_path):
    s = schedules.linear(T=50)
    path = tmp_path / "run.pt"
    train(tiny_model(), data(), s, config(steps=4), checkpoint=path, progress=False)
    bigger = UNet(UNetConfig(widths=(8, 32), attention=(False, True), groups=4, heads=2))
    with pytest.raises(ValueError, match="is for a model with config"):
        train(bigger, data(), s, config(), checkpoint=path, progress=False)
    with pytest.raises(ValueError, match=r"other settings \(lr=0.001\)"):
        train(tiny_model(), data(), s, config(lr=5e-4), checkpoint=path, progress=False)
    # a run may go on for longer, and be brought to an end with a decay of its learning rate
    state = train(tiny_model(), data(), s, config(steps=6, lr_decay_steps=2), checkpoint=path, progress=False)
    assert state.step == 6


def test_checkpoints_load_without_running_code(tmp_path):
    """A pickle that would run code on load is refused by weights_only loading."""

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "diffnotes-checkpoint-v1", "payload": Evil()}, path)
    with pytest.raises(ValueError, match="corrupted or not a PyTorch file"):
        read_checkpoint(path)


def test_bad_config():
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match=r"ema_decay must lie in \[0, 1\)"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match=r"snr_gamma must lie in \[0, inf\)"):
        TrainConfig(snr_gamma=-5.0)
    with pytest.raises(ValueError, match="lr_decay_steps must lie in 0..steps=10"):
        TrainConfig(steps=10, lr_decay_steps=11)
    assert TrainConfig.for_profile("quick").steps < TrainConfig.for_profile("full").steps

def test_ema_unrolled_is_a_weighted_average_of_the_path():
    """Book eq. ch7-eq-ema-unrolled: after n updates, ema = d^n theta_0 + (1 - d) sum_k d^k theta_{n-k}."""
    d, n = 0.8, 30
    model, ema = torch.nn.Linear(1, 1, bias=False).double(), torch.nn.Linear(1, 1, bias=False).double()
    path = torch.cumsum(torch.randn(n + 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64), 0)
    with torch.no_grad():
        ema.weight.fill_(path[0])
        for theta in path[1:]:
            model.weight.fill_(theta)
            ema_update(ema, model, d)
    k = torch.arange(n, dtype=torch.float64)
    assert abs(ema.weight.item() - (d**n * path[0] + (1 - d) * (d**k * path.flip(0)[:n]).sum()).item()) < 1e-12


def test_ema_decay_warm_up_forgets_the_initial_weights_as_one_over_a_binomial():
    """Book eq. ch7-eq-ema-initial: prod_{k<n} (1 + k)/(10 + k) = 1 / C(n + 9, 9) while the cap is not reached;
    the cap d is reached at step (10 d - 1)/(1 - d)."""
    config = TrainConfig(ema_decay=0.9)
    for n in (1, 2, 3, 10, 80):
        share = math.prod(ema_decay_at(config, k) for k in range(n))
        assert abs(share - 1 / math.comb(n + 9, 9)) < 1e-12 * share
    assert ema_decay_at(config, 79) < 0.9 == ema_decay_at(config, 80) == ema_decay_at(config, 10_000)


def test_precision_names_and_the_booleans_of_older_checkpoints():
    with pytest.raises(ValueError, match=r"mixed_precision='half' is not a precision; valid choices are: auto, bf16, fp32"):
        TrainConfig(mixed_precision="half")
    assert TrainConfig(mixed_precision=True).mixed_precision == "auto"
    assert TrainConfig(mixed_precision=False).mixed_precision == "fp32"
    assert TrainConfig.for_profile("quick").mixed_precision == "fp32"  # the chapter's numbers, the same on every CPU
    assert TrainConfig.for_profile("full").mixed_precision == "auto"


@pytest.mark.parametrize("amx", [True, False])
def test_auto_precision_is_bf16_exactly_where_the_cpu_has_amx(amx, monkeypatch):
    from diffnotes import runtime

    monkeypatch.setattr(runtime, "_cpu_has_amx", lambda: amx)
    assert runtime.native_bf16("cpu") is amx and not runtime.native_bf16("meta")
    assert runtime.autocast_dtype("auto", "cpu") == (torch.bfloat16 if amx else None)
    assert runtime.autocast_dtype("bf16", "cpu") == torch.bfloat16 and runtime.autocast_dtype("fp32", "cpu") is None
    with pytest.raises(ValueError, match="precision='fp16' is not a precision"):
        runtime.autocast_dtype("fp16", "cpu")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_training_step_runs_the_network_in_its_precision(precision):
    """The convolutions see bfloat16 under "bf16" and float32 under "fp32"; the weights stay in float32."""
    from diffnotes.training import new_state, train_step

    model, seen = tiny_model(), set()
    model.apply(lambda m: m.register_forward_hook(lambda _, __, out: seen.add(out.dtype))
                if isinstance(m, torch.nn.Conv2d) else None)
    cfg = config(mixed_precision=precision)
    state = new_state(model, cfg)
    loss = train_step(state, data(), schedules.linear(T=50), cfg, torch.device("cpu"))
    assert seen == {torch.bfloat16 if precision == "bf16" else torch.float32} and math.isfinite(loss)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_a_checkpoint_of_an_older_config_resumes(tmp_path):
    """A checkpoint from before a setting existed (here: cond_dropout) or from when mixed_precision was a boolean
    resumes with the config that means the same, and is refused by one that does not."""
    s, path = schedules.linear(T=50), tmp_path / "old.pt"
    train(tiny_model(), data(), s, config(steps=4, mixed_precision="fp32"), checkpoint=path, progress=False)
    payload = torch.load(path, weights_only=True)
    payload["train_config"]["mixed_precision"] = False
    del payload["train_config"]["cond_dropout"]
    torch.save(payload, path)
    resumed = train(tiny_model(), data(), s, config(steps=6, mixed_precision="fp32"), checkpoint=path, progress=False)
    assert resumed.step == 6
    with pytest.raises(ValueError, match=r"other settings \(mixed_precision='fp32'\)"):
        train(tiny_model(), data(), s, config(steps=8, mixed_precision="auto"), checkpoint=path, progress=False)


def test_learning_rate_warms_up_holds_and_decays_over_the_last_steps():
    from diffnotes.training import learning_rate

    flat = TrainConfig(steps=100, lr=1e-3, warmup_steps=10)
    decayed = TrainConfig(steps=100, lr=1e-3, warmup_steps=10, lr_decay_steps=40)
    assert learning_rate(flat, 0) == pytest.approx(1e-4) and learning_rate(flat, 9) == pytest.approx(1e-3)
    # the same run until the decay begins, so a run may be given its decay when it resumes
    assert all(learning_rate(decayed, s) == learning_rate(flat, s) for s in range(61))
    assert [learning_rate(decayed, s) for s in (80, 99)] == pytest.approx([5e-4, 2.5e-5])
    assert learning_rate(flat, 99) == pytest.approx(1e-3)


@pytest.mark.parametrize("amx", [True, False])
def test_auto_memory_format_is_channels_last_exactly_for_float32_on_a_cpu(amx, monkeypatch):
    from diffnotes import runtime

    monkeypatch.setattr(runtime, "_cpu_has_amx", lambda: amx)
    last, default = torch.channels_last, torch.contiguous_format
    assert runtime.memory_format("auto", "fp32", "cpu") == last and runtime.memory_format("auto", "bf16", "cpu") == default
    assert runtime.memory_format("auto", "auto", "cpu") == (default if amx else last)
    assert runtime.memory_format("auto", "fp32", "meta") == default  # not a CPU: unmeasured, the default layout
    assert runtime.memory_format("channels_last", "bf16", "cpu") == last
    assert runtime.memory_format("contiguous", "fp32", "cpu") == default
    assert runtime.memory_format_name("auto", "fp32", "cpu") == "channels_last"  # as records name them
    assert runtime.memory_format_name("auto", "bf16", "cpu") == "contiguous_format"
    with pytest.raises(ValueError, match="memory_format='nhwc' is not a memory format; valid choices are: auto, channels_last, contiguous"):
        TrainConfig(memory_format="nhwc")


def test_the_memory_format_changes_no_number_but_float_rounding(tmp_path):
    """The same run in both layouts: channels-last weights, the same losses and weights to float rounding; a checkpoint
    written in one layout resumes in the other, and the exported weights are in the default layout either way."""
    from diffnotes.checkpoints import export_weights

    s, runs = schedules.linear(T=50), {}
    for layout in ("channels_last", "contiguous"):
        path = tmp_path / f"{layout}.pt"
        runs[layout] = train(tiny_model(), data(), s, config(steps=6, memory_format=layout, mixed_precision="fp32"),
                             checkpoint=path, progress=False)
    last, default = runs["channels_last"], runs["contiguous"]
    convs = [p for p in last.model.parameters() if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert sum(not p.is_contiguous() for p in convs) > len(convs) / 2  # (a 1x1 kernel, or one channel, is both)
    assert all(p.is_contiguous() for p in default.model.parameters())
    assert last.history["loss"] == pytest.approx(default.history["loss"], rel=1e-5)
    for a, b in zip(last.model.parameters(), default.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    other = train(tiny_model(), data(), s, config(steps=8, memory_format="contiguous", mixed_precision="fp32"),
                  checkpoint=tmp_path / "channels_last.pt", progress=False)
    assert other.step == 8
    weights = export_weights(read_checkpoint(tmp_path / "channels_last.pt"), tmp_path / "w.pt")
    assert all(v.is_contiguous() for v in weights.values())


def test_a_checkpoint_names_the_machines_that_trained_it_not_one_that_only_exported(tmp_path, monkeypatch):
    from diffnotes import checkpoints
    from diffnotes.checkpoints import trained_on

    s, path = schedules.linear(T=50), tmp_path / "run.pt"
    monkeypatch.setattr(checkpoints, "machine", lambda: "the first machine")
    first = train(tiny_model(), data(), s, config(steps=4), checkpoint=path, progress=False)
    assert first.machines == ["the first machine"] and read_checkpoint(path)["machines"] == ["the first machine"]
    monkeypatch.setattr(checkpoints, "machine", lambda: "the exporting machine")
    resumed = train(tiny_model(), data(), s, config(steps=4), checkpoint=path, progress=False)  # nothing left to train
    assert trained_on(resumed) == "the first machine"
    more = train(tiny_model(), data(), s, config(steps=6), checkpoint=path, progress=False)
    assert trained_on(more) == "the first machine; the exporting machine"
    payload = read_checkpoint(path)
    del payload["machines"]  # a checkpoint from before they were kept: this machine, as before
    torch.save(payload, path)
    older = train(tiny_model(), data(), s, config(steps=6), checkpoint=path, progress=False)
    assert older.machines == [] and trained_on(older) == "the exporting machine"
