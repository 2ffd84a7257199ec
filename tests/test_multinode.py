"""Training on more than one machine: torchrun's multi-node form (two local processes acting as
two nodes, gloo, c10d rendezvous) and the data sharding it relies on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import torch
from test_train import TINY

from resemotenet.data.dataset import BatchLoader


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seen(n: int, world: int, batch: int, drop_last: bool, epoch: int = 0) -> list[torch.Tensor]:
    """The sample indices each rank's loader yields in one epoch."""
    targets = torch.arange(n)
    out = []
    for rank in range(world):
        loader = BatchLoader(
            targets.view(n, 1), targets, batch, shuffle=True, seed=3, rank=rank, world=world, drop_last=drop_last
        )
        loader.set_epoch(epoch)
        out.append(torch.cat([y for _, y in loader]) if len(loader) else torch.zeros(0, dtype=torch.long))
    return out


@pytest.mark.parametrize("n,world,batch", [(140, 2, 16), (141, 2, 16), (100, 3, 7), (7, 4, 2)])
def test_each_sample_once_per_epoch_across_ranks(n, world, batch):
    for epoch in (0, 1):
        seen = torch.cat(_seen(n, world, batch, drop_last=False, epoch=epoch))
        assert sorted(seen.tolist()) == list(range(n))  # every sample, none twice
    assert not torch.equal(torch.cat(_seen(n, world, batch, False, 0)), torch.cat(_seen(n, world, batch, False, 1)))


@pytest.mark.parametrize("n,world,batch", [(140, 2, 16), (141, 2, 16), (100, 3, 7)])
def test_training_shards_never_repeat_and_drop_less_than_a_step(n, world, batch):
    """The trainer drops the last short batch: no sample twice, fewer than one step's worth lost."""
    seen = torch.cat(_seen(n, world, batch, drop_last=True))
    assert len(set(seen.tolist())) == len(seen)
    assert n - len(seen) < batch * world


def test_every_rank_takes_the_same_number_of_steps():
    """DistributedDataParallel needs equal step counts: 127 samples over 2 ranks pad to 64 + 64."""
    targets = torch.arange(127)
    lengths = {
        len(BatchLoader(targets.view(-1, 1), targets, 16, shuffle=True, rank=r, world=2, drop_last=True))
        for r in range(2)
    }
    assert len(lengths) == 1, lengths


def test_two_nodes_train_one_epoch_with_torchrun(fer2013_csv, tmp_path):
    """``torchrun --nnodes 2 --node-rank R --rdzv-backend c10d``: each 'node' a local process (gloo)."""
    port, out = _free_port(), tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = [
        "-m",
        "resemotenet",
        "train",
        "--data",
        f"fer2013:{fer2013_csv}",
        "--epochs",
        "1",
        "--output",
        str(out),
        "--no-progress",
    ] + [x for t in TINY for x in ("--set", t)]
    nodes = []
    for rank in range(2):
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "2",
            "--node-rank",
            str(rank),
            "--nproc-per-node",
            "1",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            f"127.0.0.1:{port}",
            "--rdzv-id",
            "multinode-test",
            *train,
        ]
        nodes.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
        time.sleep(0.5 if rank == 0 else 0)  # the first node hosts the rendezvous store
    try:
        results = [p.communicate(timeout=150) for p in nodes]
    finally:
        for p in nodes:
            p.kill()
    for p, (_, err) in zip(nodes, results, strict=True):
        assert p.returncode == 0, err[-2000:]
    logs = "".join(o for o, _ in results)
    assert logs.count("epoch 1/1") == 1  # rank 0 alone logs and writes the run
    assert (out / "best.pt").is_file() and (out / "test_metrics.json").is_file()
