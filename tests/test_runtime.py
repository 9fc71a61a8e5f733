"""The profile, device and seed mechanism of diffnotes.runtime."""

import numpy as np
import pytest
import torch

import diffnotes
from diffnotes import runtime


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv(runtime.PROFILE_ENV, raising=False)
    monkeypatch.delenv(runtime.DEVICE_ENV, raising=False)
    return monkeypatch


def test_profile_from_environment(clean_env):
    clean_env.setenv(runtime.PROFILE_ENV, "full")
    assert runtime.get_profile() == "full"
    clean_env.setenv(runtime.PROFILE_ENV, " Quick ")
    assert runtime.get_profile() == "quick"


def test_profile_argument_overrides_environment(clean_env):
    clean_env.setenv(runtime.PROFILE_ENV, "full")
    assert runtime.get_profile("quick") == "quick"


def test_default_profile_follows_cuda(clean_env):
    clean_env.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_profile() == "full"
    clean_env.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.get_profile() == "quick"
    clean_env.setenv(runtime.PROFILE_ENV, "")
    assert runtime.get_profile() == "quick"


def test_unknown_profile_lists_the_valid_ones(clean_env):
    clean_env.setenv(runtime.PROFILE_ENV, "fast")
    with pytest.raises(ValueError, match=r"DIFFNOTES_PROFILE='fast'.*valid profiles are: quick, full"):
        runtime.get_profile()
    with pytest.raises(ValueError, match=r"profile='slow'.*quick, full"):
        runtime.setup(profile="slow")


def test_by_profile_picks_the_matching_value(clean_env):
    assert runtime.by_profile(quick=1, full=2, profile="quick") == 1
    assert runtime.by_profile(quick=1, full=2, profile="full") == 2
    clean_env.setenv(runtime.PROFILE_ENV, "full")
    assert runtime.by_profile(quick="a", full="b") == "b"


def test_auto_device_prefers_cuda_then_mps_then_cpu(clean_env):
    clean_env.setattr(torch.cuda, "is_available", lambda: False)
    clean_env.setattr(runtime, "_mps_available", lambda: False)
    assert runtime.get_device() == torch.device("cpu")
    clean_env.setattr(runtime, "_mps_available", lambda: True)
    assert runtime.get_device("auto") == torch.device("mps")
    clean_env.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_device() == torch.device("cuda")


def test_device_override_and_environment(clean_env):
    assert runtime.get_device("cpu") == torch.device("cpu")
    assert runtime.get_device(torch.device("cpu")) == torch.device("cpu")
    clean_env.setenv(runtime.DEVICE_ENV, "CPU")
    assert runtime.get_device() == torch.device("cpu")


def test_unknown_or_absent_device_is_an_error(clean_env):
    clean_env.setenv(runtime.DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match=r"DIFFNOTES_DEVICE='tpu'.*auto, cuda, mps, cpu"):
        runtime.get_device()
    clean_env.setattr(torch.cuda, "is_available", lambda: False)
    clean_env.setattr(runtime, "_mps_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        runtime.get_device("cuda")
    with pytest.raises(ValueError, match="MPS is not available"):
        runtime.get_device("mps")


def _draws(seed):
    generator = runtime.seed_everything(seed)
    return (
        np.random.rand(3),
        torch.rand(3),
        torch.rand(3, generator=generator),
        __import__("random").random(),
    )


def test_seeding_repeats_every_generator():
    first, second = _draws(7), _draws(7)
    np.testing.assert_array_equal(first[0], second[0])
    assert torch.equal(first[1], second[1]) and torch.equal(first[2], second[2])
    assert first[3] == second[3]
    other = _draws(8)
    assert not torch.equal(first[1], other[1])


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", True, None])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be an integer"):
        runtime.seed_everything(seed)


def test_setup_reports_its_choices(clean_env):
    rt = diffnotes.setup(seed=3, profile="quick", device="cpu")
    assert (rt.profile, rt.device, rt.seed) == ("quick", torch.device("cpu"), 3)
    assert str(rt) == "diffnotes runtime: profile=quick, device=cpu, seed=3"
    assert torch.equal(torch.rand(2, generator=rt.generator), torch.rand(2, generator=torch.Generator().manual_seed(3)))
