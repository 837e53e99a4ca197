"""Two-process DDP on CPU (Lightning ddp_spawn, gloo), checked on the REAL module in each rank:
its own SimCLR criterion gathers both ranks' rows during training and, on fixed tensors, gives
per-rank losses whose mean is the single-process full-batch loss (gradients too); ranks see
distinct clips; and the weights are identical on both ranks after the steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from lightly.loss import NTXentLoss

WORLD = 2
STEPS = 3
BATCH = 4
FIXED = (
    torch.randn(8, 6, generator=torch.Generator().manual_seed(0)),
    torch.randn(8, 6, generator=torch.Generator().manual_seed(1)),
)


def criterion_on_fixed_rows(criterion: torch.nn.Module, rank: int) -> dict:
    """The module's own criterion on this rank's half of ``FIXED``: loss and gradient."""
    a, b = FIXED
    n = a.shape[0] // WORLD
    za = a[rank * n : (rank + 1) * n].clone().requires_grad_(True)
    loss = criterion(za, b[rank * n : (rank + 1) * n])
    loss.backward()
    return {"loss": loss.item(), "grad": za.grad.tolist()}


class RankProbe(pl.Callback):
    """In each rank process: how many rows the module's criterion held after each of its
    gathers during the training steps (lightly's ``dist.gather``, watched while training), the
    criterion on fixed rows, the clips of each step, and the final parameters."""

    def __init__(self, out) -> None:
        self.out, self.tracks = str(out), []

    def on_train_start(self, trainer, module):
        from lightly.utils import dist as ldist

        self.gathered: list[int] = []
        self.original = ldist.gather

        def watched(t):
            parts = self.original(t)
            self.gathered.append(sum(p.shape[0] for p in parts))
            return parts

        ldist.gather = watched

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.tracks.append([int(t) for t in batch[2]])

    def on_train_end(self, trainer, module):
        from lightly.utils import dist as ldist

        ldist.gather = self.original
        criterion = module.objective.criterion
        rank = trainer.global_rank
        info = {
            "world": ldist.world_size(),
            "gathered": self.gathered,
            "tracks": self.tracks,
            "gather_distributed": criterion.gather_distributed,
            "temperature": criterion.temperature,
            "fixed": criterion_on_fixed_rows(criterion, rank),
        }
        with open(f"{self.out}/probe{rank}.json", "w") as fh:
            json.dump(info, fh)
        params = {k: v.detach().cpu().clone() for k, v in module.named_parameters()}
        torch.save(params, f"{self.out}/params{rank}.pt")


@pytest.mark.slow
def test_ddp_two_cpu_processes_gather_negatives_and_keep_ranks_in_sync(tmp_path):
    from test_ssl_train import ToyPairs, tiny_cfg

    from audioclr.ssl.module import PretrainModule
    from audioclr.ssl.train import pretrain

    cfg = tiny_cfg(
        tmp_path,
        f"trainer.max_steps={STEPS}",
        f"trainer.batch_size={BATCH}",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp_spawn",
    )
    pretrain(cfg, dataset=ToyPairs(n=16), sample_rate=8000, callbacks=[RankProbe(tmp_path)])
    rows = [json.loads((tmp_path / f"probe{r}.json").read_text()) for r in range(WORLD)]
    assert [r["world"] for r in rows] == [WORLD, WORLD]
    assert all(r["gather_distributed"] for r in rows)
    # during training, each step the real criterion gathered both views of both ranks' clips
    for r in rows:
        assert r["gathered"] == [WORLD * BATCH] * (2 * STEPS), r["gathered"]
    # on fixed rows, the mean of the per-rank losses is the single-process loss over all 8
    a, b = FIXED
    full_a = a.clone().requires_grad_(True)
    full = NTXentLoss(temperature=rows[0]["temperature"])(full_a, b)
    ranks = [r["fixed"] for r in rows]
    assert np.mean([r["loss"] for r in ranks]) == pytest.approx(full.item(), rel=1e-5)
    # (a rank-local loss would differ: negatives from the other rank count)
    local = NTXentLoss(temperature=rows[0]["temperature"])(a[:4], b[:4]).item()
    assert abs(ranks[0]["loss"] - local) > 1e-3
    # DDP averages gradients over ranks: rank gradients / WORLD == the full-batch gradient
    # (lightly's gather passes gradients back across ranks)
    full.backward()
    grads = torch.tensor([g for r in ranks for g in r["grad"]]) / WORLD
    torch.testing.assert_close(grads, full_a.grad, rtol=1e-4, atol=1e-6)
    # the two ranks trained on different clips at each step
    for step in range(STEPS):
        assert not set(rows[0]["tracks"][step]) & set(rows[1]["tracks"][step])
    # the parameters are identical on both ranks, and they did train
    p0, p1 = (torch.load(tmp_path / f"params{r}.pt", weights_only=True) for r in range(WORLD))
    assert p0.keys() == p1.keys() and len(p0) > 0
    assert all(torch.equal(p0[k], p1[k]) for k in p0), [
        k for k in p0 if not torch.equal(p0[k], p1[k])
    ]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.trainer.seed)
        init = dict(PretrainModule(cfg, 8000).named_parameters())
    assert all(not torch.equal(p0[k], init[k].detach()) for k in p0)
    ckpt = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == STEPS


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
