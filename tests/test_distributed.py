"""Training under torchrun (diffnotes.distributed): two processes with DistributedDataParallel take the steps one
process takes on the whole batch, rank 0 writes the one checkpoint, and that checkpoint resumes in one process.

The two ranks are real processes (torch.multiprocessing, spawned, gloo over a free local port), with a deadline."""

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp
from conftest import TINY_UNET

from diffnotes import schedules
from diffnotes.checkpoints import read_checkpoint
from diffnotes.nets.unet import UNet
from diffnotes.training import TrainConfig, train

DEADLINE_S = 90


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return UNet(TINY_UNET)


def data():
    return torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


def config(**kw):
    base = dict(steps=6, batch_size=8, warmup_steps=2, log_every=2, checkpoint_every=4, ema_decay=0.5, lr=1e-3,
                mixed_precision="fp32")
    return TrainConfig(**{**base, **kw})


def _rank(rank, world, port, folder):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from diffnotes.distributed import leave, train_distributed

    model, batches = tiny_model(), []
    model.register_forward_pre_hook(lambda _, args: batches.append(args[0].shape[0]))
    state = train_distributed(model, data(), schedules.linear(T=50), config(), "cpu",
                              checkpoint=folder / "run.pt", progress=False)
    torch.save({"model": state.model.state_dict(), "ema": state.ema.state_dict(), "batches": batches},
               folder / f"rank{rank}.out")
    leave()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_ranks(folder):
    context = mp.start_processes(_rank, args=(2, _free_port(), folder), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while not context.join(timeout=1.0):
            if time.monotonic() > deadline:
                pytest.fail(f"the two ranks did not finish within {DEADLINE_S} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()


def close(a, b):
    # Float tolerance: the sums of two half batches round differently from one sum, and Adam divides by the root of
    # the squared gradients, which magnifies that rounding where a gradient is ~0 (the attention's key bias, which
    # the softmax ignores), to about 1e-6 after six steps.
    return all(torch.allclose(x, y, rtol=1e-4, atol=1e-5) for x, y in zip(a.values(), b.values(), strict=True))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    run_two_ranks(folder)
    return folder


def test_two_ranks_at_batch_b_take_the_steps_of_one_process_at_batch_2b(two_ranks):
    one = train(tiny_model(), data(), schedules.linear(T=50), config(), progress=False)
    ranks = [torch.load(two_ranks / f"rank{r}.out", weights_only=True) for r in (0, 1)]
    assert ranks[0]["batches"] == ranks[1]["batches"] == [4] * 6  # each rank ran its half of every batch of 8
    for r in ranks:
        assert close(r["model"], one.model.state_dict()) and close(r["ema"], one.ema.state_dict())
    weights = one.model.state_dict()
    assert not close(weights, tiny_model().state_dict())  # the runs moved the weights: the comparison means something
    assert all(torch.equal(a, b) for a, b in zip(ranks[0]["model"].values(), ranks[1]["model"].values()))


def test_rank_0_writes_the_one_checkpoint_and_it_resumes_in_one_process(two_ranks):
    assert sorted(p.name for p in two_ranks.iterdir()) == ["rank0.out", "rank1.out", "run.pt"]
    assert read_checkpoint(two_ranks / "run.pt")["step"] == 6
    s = schedules.linear(T=50)
    resumed = train(tiny_model(seed=9), data(), s, config(steps=10), checkpoint=two_ranks / "run.pt", progress=False)
    uninterrupted = train(tiny_model(), data(), s, config(steps=10), progress=False)
    assert resumed.step == 10 and close(resumed.model.state_dict(), uninterrupted.model.state_dict())
    assert close(resumed.ema.state_dict(), uninterrupted.ema.state_dict())


def test_a_batch_that_does_not_split_evenly_is_refused(monkeypatch):
    from diffnotes.training import new_state, train_step

    state = new_state(tiny_model(), config(batch_size=7))
    with pytest.raises(ValueError, match="batch_size=7 must be divisible by the number of processes, 2"):
        train_step(state, data(), schedules.linear(T=50), config(batch_size=7), torch.device("cpu"), shard=(0, 2))
