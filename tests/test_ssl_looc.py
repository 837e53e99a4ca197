"""LooC: the key views share exactly one group's parameters with the query (checked on the
applied parameters and on the waveform, computed independently), two-view augmentation is
unchanged, and each sensitive space's InfoNCE matches a direct computation, in one process and
across two gloo ranks."""

from __future__ import annotations

import math
import socket

import pytest
import torch
import torch.multiprocessing as mp

from audioclr.augment.batched import BatchedAugment
from audioclr.augment.config import AugmentConfig
from audioclr.augment.params import PARAM_NAMES
from audioclr.config import load_config
from audioclr.errors import ConfigError
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.objectives.looc import sensitive_infonce
from audioclr.ssl.views import GROUPS, make_views

SR = 8000


def crops(batch: int = 6, samples: int = 4000) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return 0.3 * torch.randn(batch, samples, generator=g), 0.3 * torch.randn(
        batch, samples, generator=g
    )


def gain_polarity_only() -> AugmentConfig:
    """Only the two sample-wise transforms, so a view is ``crop * 10**(dB/20) * sign``."""
    overrides = [f"{t}.p=0" for t in ("noise", "filter", "delay", "pitch", "reverb")]
    return load_config(AugmentConfig, None, [*overrides, "gain.p=1", "polarity.p=0.5"])


def test_two_views_are_plain_augmentation_bit_for_bit():
    aug = BatchedAugment(AugmentConfig(), SR)
    a, b = crops()
    x, params = make_views(aug, a, b, torch.Generator().manual_seed(7))
    y, expected = aug(torch.cat([a, b]), torch.Generator().manual_seed(7), return_params=True)
    assert torch.equal(x, y) and torch.equal(params, expected)


def test_each_key_view_shares_its_group_with_the_query_and_the_rest_with_view_b():
    aug = BatchedAugment(AugmentConfig(), SR)
    a, b = crops()
    groups = ("pitch", "filter", "gain")
    x, params = make_views(aug, a, b, torch.Generator().manual_seed(1), groups)
    n = a.shape[0]
    assert x.shape == (5 * n, a.shape[1]) and params.shape == (5 * n, len(PARAM_NAMES))
    p_a, p_b = params[:n], params[n : 2 * n]
    for i, group in enumerate(groups):
        key = params[(2 + i) * n : (3 + i) * n]
        for c, name in enumerate(PARAM_NAMES):
            source = p_a if name.startswith(f"{group}.") else p_b
            assert torch.equal(key[:, c], source[:, c]), (group, name)
    # the draws differ between views a and b, so the test above tells the two sources apart
    for group in groups:
        cols = [c for c, name in enumerate(PARAM_NAMES) if name.startswith(f"{group}.")]
        assert not torch.equal(p_a[:, cols], p_b[:, cols]), group


def test_key_view_waveform_is_crop_b_with_the_query_gain():
    aug = BatchedAugment(gain_polarity_only(), SR)
    a, b = crops()
    x, params = make_views(aug, a, b, torch.Generator().manual_seed(2), ("gain",))
    n = a.shape[0]
    gain = params[:, PARAM_NAMES.index("gain.gain_db")]
    sign = params[:, PARAM_NAMES.index("polarity.sign")]
    expected = b * (10 ** (gain[:n] / 20) * sign[n : 2 * n]).unsqueeze(1)
    torch.testing.assert_close(x[2 * n :], expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(x[n : 2 * n], expected)  # view b has its own gain


def direct_infonce(z: torch.Tensor, views: int, key: int, t: float, clips_per_rank: int):
    """The sensitive-space loss written out with loops over every query of the global batch:
    ``z`` holds every rank's rows, rank-major, each rank's rows view-major."""
    z = torch.nn.functional.normalize(z.double(), dim=1)
    world = z.shape[0] // (views * clips_per_rank)
    ranks = z.view(world, views, clips_per_rank, -1)
    losses = []
    for r in range(world):
        for b in range(clips_per_rank):
            q = ranks[r, 0, b]
            keys = ranks[:, key].reshape(world * clips_per_rank, -1)
            logits = [float(q @ k) / t for k in keys]
            logits += [float(q @ ranks[r, j, b]) / t for j in range(1, views) if j != key]
            positive = logits[r * clips_per_rank + b]
            losses.append(math.log(sum(math.exp(v) for v in logits)) - positive)
    return sum(losses) / len(losses)


def test_sensitive_infonce_matches_a_direct_computation():
    z = torch.randn(4 * 5, 7, generator=torch.Generator().manual_seed(0))
    for key in (2, 3):
        got = sensitive_infonce(z, views=4, key=key, temperature=0.3)
        assert float(got) == pytest.approx(direct_infonce(z, 4, key, 0.3, 5), rel=1e-5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_loss(rank: int, world: int, port: int, z: torch.Tensor, out: dict) -> None:
    import torch.distributed as dist

    url = f"tcp://127.0.0.1:{port}"
    dist.init_process_group("gloo", init_method=url, rank=rank, world_size=world)
    try:
        part = z.view(world, -1, z.shape[1])[rank]
        out[rank] = float(sensitive_infonce(part, views=3, key=2, temperature=0.5))
    finally:
        dist.destroy_process_group()


def test_sensitive_infonce_gathers_the_keys_of_every_rank():
    world, clips = 2, 3
    z = torch.randn(world * 3 * clips, 5, generator=torch.Generator().manual_seed(4))
    out = mp.Manager().dict()
    mp.spawn(rank_loss, args=(world, free_port(), z, out), nprocs=world)
    mean = (out[0] + out[1]) / 2
    assert mean == pytest.approx(direct_infonce(z, 3, 2, 0.5, clips), rel=1e-5)
    # and not the loss without the other rank's keys
    alone = sum(sensitive_infonce(p, 3, 2, 0.5) for p in z.view(world, -1, 5)) / world
    assert float(alone) != pytest.approx(mean, rel=1e-3)


def test_worker_collate_sends_the_key_views_after_view_b():
    from audioclr.ssl.data import AugmentCollate, step_seed

    aug = BatchedAugment(AugmentConfig(), SR)
    a, b = crops()
    items = [(a[i], b[i], i, 5) for i in range(a.shape[0])]
    va, vb, _idx, done, params = AugmentCollate(aug, 0, 0, params=True, groups=("pitch",))(items)
    x, expected = make_views(
        aug, a, b, torch.Generator().manual_seed(step_seed(0, 5, 0)), ("pitch",)
    )
    assert done and vb.shape[0] == 2 * a.shape[0]
    assert torch.equal(torch.cat([va, vb]), x) and torch.equal(params, expected)


def test_unknown_or_idle_group_names_the_key():
    with pytest.raises(ConfigError, match="looc.groups"):
        load_config(PretrainConfig, None, ["method=looc", "looc.groups=[pitch, colour]"])
    with pytest.raises(ConfigError, match="never runs"):
        load_config(PretrainConfig, None, ["method=looc", "augment_preset=timbre"])
    assert set(GROUPS) <= {n.split(".")[0] for n in PARAM_NAMES}
