"""Two-process DDP on CPU (Lightning ddp_spawn, gloo): training runs, ranks see distinct clips,
and NT-Xent sees the negatives of both ranks (checked against a single-process computation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lightly.loss import NTXentLoss

WORLD = 2


FIXED = torch.randn(8, 6, generator=torch.Generator().manual_seed(0)), torch.randn(
    8, 6, generator=torch.Generator().manual_seed(1))


def ntxent_on_rank(rank: int) -> dict:
    """NT-Xent with gathering on this rank's half of the fixed batch: loss, grad, rows seen."""
    from lightly.utils import dist as ldist

    a, b = FIXED
    n = a.shape[0] // WORLD
    za = a[rank * n : (rank + 1) * n].clone().requires_grad_(True)
    loss = NTXentLoss(temperature=0.3, gather_distributed=True)(za, b[rank * n : (rank + 1) * n])
    loss.backward()
    return {"loss": loss.item(), "grad": za.grad.tolist(),
            "gathered": torch.cat(ldist.gather(za.detach())).shape[0]}


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_with_negatives_from_both_ranks(tmp_path):
    import pytorch_lightning as pl
    from test_ssl_train import ToyPairs, tiny_cfg

    from audioclr.ssl.train import pretrain

    cfg = tiny_cfg(tmp_path, "trainer.max_steps=3", "trainer.batch_size=4",
                   "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp_spawn")
    pretrain(cfg, dataset=ToyPairs(n=16), sample_rate=8000, callbacks=[GatherProbe(tmp_path)])
    rows = [json.loads((tmp_path / f"probe{r}.json").read_text()) for r in range(WORLD)]
    assert [r["world"] for r in rows] == [2, 2]
    assert all(r["gathered"] == 2 * 4 for r in rows)  # NT-Xent saw both ranks' rows
    # the mean of the per-rank losses is the single-process loss over the whole batch of 8
    a, b = FIXED
    full_a = a.clone().requires_grad_(True)
    full = NTXentLoss(temperature=0.3)(full_a, b)
    ranks = [r["ntxent"] for r in rows]
    assert all(r["gathered"] == 8 for r in ranks)
    assert np.mean([r["loss"] for r in ranks]) == pytest.approx(full.item(), rel=1e-5)
    # a local-only loss differs: negatives from the other rank count
    assert abs(ranks[0]["loss"] - NTXentLoss(temperature=0.3)(a[:4], b[:4]).item()) > 1e-3
    # DDP averages gradients over ranks: rank gradients / WORLD == the full-batch gradient
    # (lightly's gather passes gradients back across ranks)
    full.backward()
    grads = torch.tensor([g for r in ranks for g in r["grad"]]) / WORLD
    torch.testing.assert_close(grads, full_a.grad, rtol=1e-4, atol=1e-6)
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
        if batch_idx == 0:
            self.ntxent = ntxent_on_rank(trainer.global_rank)
        info["ntxent"] = self.ntxent
        with open(f"{self.out}/probe{trainer.global_rank}.json", "w") as fh:
            json.dump(info, fh)


def test_step_batches_are_disjoint_across_ranks_and_cover_the_data():
    from audioclr.ssl.data import StepBatchSampler

    n, bs = 10, 3
    seen = []
    for step in range(5):  # 5 steps x 2 ranks x 3 = 30 = 3 epochs of 10
        for rank in range(WORLD):
            seen += StepBatchSampler(n, bs, 0, step, step + 1, rank, WORLD).batch(step)
    per_epoch = {e: sorted(i for _, ep, i in seen if ep == e) for e in range(3)}
    assert all(v == list(range(n)) for v in per_epoch.values())
    # resuming at step 3 gives the same batches as running through
    through = list(StepBatchSampler(n, bs, 0, 0, 5))[3:]
    assert list(StepBatchSampler(n, bs, 0, 3, 5)) == through
    assert all(item[0] == 3 for item in through[0])  # items carry their step
    assert np.unique([i for _, _, i in through[0]]).size == bs
