"""Two-process DDP on CPU (gloo): NT-Xent sees the negatives of both ranks; Lightning DDP trains."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightly.loss import NTXentLoss

WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ntxent_rank(rank: int, port: int, a: torch.Tensor, b: torch.Tensor, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        n = a.shape[0] // WORLD
        za = a[rank * n : (rank + 1) * n].clone().requires_grad_(True)
        zb = b[rank * n : (rank + 1) * n].clone().requires_grad_(True)
        loss = NTXentLoss(temperature=0.3, gather_distributed=True)(za, zb)
        loss.backward()
        gathered = torch.cat(__import__("lightly.utils.dist", fromlist=["gather"]).gather(za))
        torch.save({"loss": loss.detach(), "grad_a": za.grad, "rows": gathered.shape[0]},
                   f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ntxent_gathers_negatives_from_both_ranks(tmp_path):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    mp.spawn(ntxent_rank, args=(free_port(), a, b, str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert all(r["rows"] == 8 for r in ranks)  # the loss saw 2 x 4 local rows
    # the mean of the per-rank losses is the single-process loss over the whole batch of 8
    full_a = a.clone().requires_grad_(True)
    full = NTXentLoss(temperature=0.3)(full_a, b)
    mean = sum(r["loss"] for r in ranks) / WORLD
    assert mean.item() == pytest.approx(full.item(), rel=1e-5)
    # a rank's loss differs from a local-only loss (negatives from the other rank count)
    local = NTXentLoss(temperature=0.3)(a[:4], b[:4]).item()
    assert abs(ranks[0]["loss"].item() - local) > 1e-3
    # DDP averages gradients over ranks: rank gradients / WORLD == the full-batch gradient
    # restricted to that rank's rows (lightly's gather passes gradients back across ranks)
    full.backward()
    grads = torch.cat([r["grad_a"] for r in ranks]) / WORLD
    torch.testing.assert_close(grads, full_a.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_lightning_ddp_two_cpu_processes_train(tmp_path):
    import pytorch_lightning as pl
    from test_ssl_train import ToyPairs, tiny_cfg

    from audioclr.ssl.train import pretrain

    cfg = tiny_cfg(tmp_path, "trainer.max_steps=3", "trainer.batch_size=4",
                   "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp_spawn")
    pretrain(cfg, dataset=ToyPairs(n=16), sample_rate=8000, callbacks=[GatherProbe(tmp_path)])
    rows = [json.loads((tmp_path / f"probe{r}.json").read_text()) for r in range(WORLD)]
    assert [r["world"] for r in rows] == [2, 2]
    assert all(r["gathered"] == 2 * 4 for r in rows)
    # the two ranks trained on different clips at each step
    for step in range(3):
        assert not set(rows[0]["tracks"][step]) & set(rows[1]["tracks"][step])
    ckpt = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 3
    assert isinstance(pl.__version__, str)


class GatherProbe(__import__("pytorch_lightning").Callback):
    """Per rank: world size, rows NT-Xent gathers from a local batch, and the clips seen."""

    def __init__(self, out) -> None:
        self.out, self.tracks = str(out), []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        from lightly.utils import dist as ldist

        self.tracks.append([int(t) for t in batch[2]])
        local = torch.zeros(batch[0].shape[0], 4)
        info = {"world": ldist.world_size(), "gathered": torch.cat(ldist.gather(local)).shape[0],
                "tracks": self.tracks}
        with open(f"{self.out}/probe{trainer.global_rank}.json", "w") as fh:
            json.dump(info, fh)


def test_step_batches_are_disjoint_across_ranks_and_cover_the_data():
    from audioclr.ssl.data import StepBatchSampler

    n, bs = 10, 3
    seen = []
    for step in range(5):  # 5 steps x 2 ranks x 3 = 30 = 3 epochs of 10
        for rank in range(WORLD):
            seen += StepBatchSampler(n, bs, 0, step, step + 1, rank, WORLD).batch(step)
    per_epoch = {e: sorted(i for ep, i in seen if ep == e) for e in range(3)}
    assert all(v == list(range(n)) for v in per_epoch.values())
    # resuming at step 3 gives the same batches as running through
    through = list(StepBatchSampler(n, bs, 0, 0, 5))[3:]
    assert list(StepBatchSampler(n, bs, 0, 3, 5)) == through
    assert np.unique([i for _, i in through[0]]).size == bs
