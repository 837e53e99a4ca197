"""Metadata positives in pretraining: the multi-positive loss (against lightly's NT-Xent, a
direct loop over the formula, and across two gloo ranks), group ids travelling from PairDataset
to the loss, and exact resume with group sampling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from lightly.loss import NTXentLoss

from audioclr.ssl.objectives.supcon import SupConLoss

T = 0.2
SR = 8000
# training imports stay inside the tests: the gloo ranks re-import this module


def rows(seed: int, n: int = 6, d: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


def direct_loss(a: torch.Tensor, b: torch.Tensor, groups: list[set[int]], t: float) -> float:
    """Khosla et al. L_out written out with loops: views 0..n-1 are a, n..2n-1 are b; view
    ``i`` and ``j`` are positives when they are the two views of one clip or their clips share
    a group; the mean over all 2n anchors."""
    z = F.normalize(torch.cat([a, b]), dim=1).double()
    n = a.shape[0]
    clip = [i % n for i in range(2 * n)]
    total = 0.0
    for i in range(2 * n):
        others = [k for k in range(2 * n) if k != i]
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in others)
        pos = [k for k in others if clip[k] == clip[i] or groups[clip[i]] & groups[clip[k]]]
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / t) / denom) for p in pos) / len(pos)
    return total / (2 * n)


def test_equals_nt_xent_when_every_group_has_one_member():
    a, b = rows(0)
    for ids in (
        torch.full((6, 1), -1),
        torch.arange(6)[:, None],
        torch.tensor([[20, -1]] + [[k, 9 + k] for k in range(5)]),
    ):
        a1, a2 = a.clone().requires_grad_(True), a.clone().requires_grad_(True)
        ours = SupConLoss(T)(a1, b, ids)
        ref = NTXentLoss(temperature=T)(a2, b)
        ours.backward()
        ref.backward()
        torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(a1.grad, a2.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("ids", "groups"),
    [
        ([[0], [0], [1], [-1], [1], [0]], [{0}, {0}, {1}, set(), {1}, {0}]),
        # playlist-like: several groups per clip, padded with -1
        ([[0, 2], [0, -1], [1, -1], [-1, -1], [1, 2], [3, -1]],
         [{0, 2}, {0}, {1}, set(), {1, 2}, {3}]),
    ],
)  # fmt: skip
def test_matches_a_direct_computation_with_shared_groups(ids, groups):
    a, b = rows(1)
    ours = SupConLoss(T)(a, b, torch.tensor(ids))
    assert ours.item() == pytest.approx(direct_loss(a, b, groups, T), rel=1e-5)
    # shared groups are no longer pushed apart: the loss is not NT-Xent's
    assert abs(ours.item() - NTXentLoss(temperature=T)(a, b).item()) > 1e-3


WORLD = 2
DDP_IDS = torch.tensor([[0], [1], [-1], [1], [0], [2], [2], [-1]])  # groups span both ranks


def _rank(rank: int, init: str, out: str) -> None:
    torch_dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    a, b = rows(2, n=8)
    n = 8 // WORLD
    part = slice(rank * n, (rank + 1) * n)
    za = a[part].clone().requires_grad_(True)
    loss = SupConLoss(T)(za, b[part], DDP_IDS[part])
    loss.backward()
    torch.save({"loss": loss.detach(), "grad": za.grad}, f"{out}/rank{rank}.pt")
    torch_dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_give_the_full_batch_loss_and_gradient(tmp_path: Path):
    mp.spawn(_rank, args=(f"file://{tmp_path / 'init'}", str(tmp_path)), nprocs=WORLD)
    got = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    a, b = rows(2, n=8)
    full_a = a.clone().requires_grad_(True)
    full = SupConLoss(T)(full_a, b, DDP_IDS)
    full.backward()
    groups = [set(r) - {-1} for r in DDP_IDS.tolist()]
    assert full.item() == pytest.approx(direct_loss(a, b, groups, T), rel=1e-5)
    # the mean of the per-rank losses is the full-batch loss (DDP averages gradients likewise)
    assert np.mean([g["loss"].item() for g in got]) == pytest.approx(full.item(), rel=1e-5)
    grads = torch.cat([g["grad"] for g in got]) / WORLD
    torch.testing.assert_close(grads, full_a.grad, rtol=1e-4, atol=1e-6)
    # a rank-local loss would differ: positives and negatives on the other rank count
    local = SupConLoss(T)(a[:4], b[:4], DDP_IDS[:4]).item()
    assert abs(got[0]["loss"].item() - local) > 1e-3


@pytest.fixture(scope="module")
def group_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 tracks in 4 releases of 4: each release is 3 tones from its own set."""
    from conftest import write_audio

    from audioclr.data.cache import prepare_cache
    from audioclr.data.metadata import attach_metadata

    root = tmp_path_factory.mktemp("groups")
    rng = np.random.default_rng(0)
    t = np.arange(int(1.5 * SR)) / SR
    lines = ["path,release"]
    for r in range(4):
        freqs = 200 * 2 ** (np.arange(3) / 2 + 1.5 * r)
        for k in range(4):
            x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs)
            write_audio(root / "audio" / f"r{r}" / f"t{k}.wav", (0.2 * x).astype(np.float32), SR)
            lines.append(f"audio/r{r}/t{k}.wav,rel{r}")
    prepare_cache(root / "audio", root / "cache", sample_rate=SR, progress=False)
    (root / "tracks.csv").write_text("\n".join(lines) + "\n")
    attach_metadata(root / "cache", root / "tracks.csv")
    return root / "cache"


def group_spy():
    """A ``Record`` callback that also keeps, per step, the batch's group ids and those
    SimCLR's multi-positive criterion received."""
    from test_ssl_train import Record

    class GroupSpy(Record):
        def on_train_start(self, trainer, module):
            self.batch_ids, self.loss_ids = [], []
            module.objective.group_criterion.register_forward_hook(
                lambda mod, args, kwargs, out: self.loss_ids.append(kwargs["group_ids"].clone()),
                with_kwargs=True,
            )

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.batch_ids.append((batch[2].clone(), batch[5].clone()))
            super().on_train_batch_end(trainer, module, outputs, batch, batch_idx)

    return GroupSpy()


def group_cfg(tmp_path: Path, cache: Path, *extra: str):
    from test_ssl_train import tiny_cfg

    return tiny_cfg(
        tmp_path,
        f"data.cache={cache}",
        "data.positives=group:release",
        "data.group_p=0.5",
        "trainer.batch_size=4",
        "trainer.max_steps=6",
        "trainer.checkpoint_every=3",
        *extra,
    )


def test_group_ids_reach_the_loss_and_resume_is_exact(tmp_path: Path, group_cache: Path):
    from test_ssl_train import Record

    from audioclr.data.cache import ClipCache
    from audioclr.data.groups import load_groups
    from audioclr.ssl.train import pretrain

    full = group_spy()
    pretrain(group_cfg(tmp_path / "a", group_cache), callbacks=[full])
    groups = load_groups(ClipCache(group_cache), "group:release")
    assert len(full.loss_ids) == 6
    for (idx, batch_ids), loss_ids in zip(full.batch_ids, full.loss_ids, strict=True):
        assert torch.equal(batch_ids, torch.from_numpy(groups.ids[idx.numpy()]))
        assert torch.equal(loss_ids, batch_ids)
    cfg_b = group_cfg(tmp_path / "b", group_cache)
    with pytest.raises(RuntimeError, match="simulated crash"):
        pretrain(cfg_b, callbacks=[Record(stop_at=4)])
    resumed = Record()
    pretrain(cfg_b, resume=True, callbacks=[resumed])
    assert [r[0] for r in resumed.rows] == [4, 5, 6]
    np.testing.assert_allclose(
        [r[1] for r in resumed.rows], [r[1] for r in full.rows[3:]], rtol=1e-5
    )


def test_objectives_without_pair_comparison_refuse_group_positives():
    from audioclr.config import load_config
    from audioclr.errors import ConfigError
    from audioclr.ssl.config import PretrainConfig

    with pytest.raises(ConfigError, match="data.positives.*method=cpc"):
        load_config(PretrainConfig, None, ["method=cpc", "data.positives=group:release"])
    cfg = load_config(PretrainConfig, None, ["method=byol", "data.positives=playlist"])
    assert cfg.data.positives == "playlist"  # no negatives: the plain objective on the pairs
