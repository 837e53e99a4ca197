"""``simclr.layer=all``: SimCLR's head reads every block's time statistics (the probes' default
vector), checked against numpy; bad values name the key; a run learns and exports an encoder the
probes can load."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from test_ssl_objectives import MIN_RELATIVE_DROP, tiny_encoder
from test_ssl_train import SR, Record, ToyPairs, tiny_cfg

from audioclr.errors import ConfigError
from audioclr.evaluate.frozen import layer_vectors
from audioclr.ssl.export import export_encoder, load_encoder
from audioclr.ssl.objectives.simclr import SimCLR, SimCLRConfig
from audioclr.ssl.pooling import block_stats_dim
from audioclr.ssl.train import pretrain


def numpy_block_stats(encoder, x: torch.Tensor) -> np.ndarray:
    """Per block: mean over frequency, then each channel's mean and population std over time."""
    with torch.no_grad():
        feats = encoder.features(x)
    parts = []
    for name in encoder.layer_names[:-1]:
        m = feats[name].double().numpy().mean(axis=2)  # (batch, channels, time)
        parts += [m.mean(axis=-1), m.std(axis=-1)]
    return np.concatenate(
        [np.concatenate(parts[i : i + 2], axis=1) for i in range(0, len(parts), 2)], axis=1
    )


def head_input(objective: SimCLR, encoder, x: torch.Tensor) -> torch.Tensor:
    seen = []
    hook = objective.projection.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    objective.loss(encoder, x, None, torch.Generator().manual_seed(0))
    hook.remove()
    return seen[0].detach()


def test_head_reads_every_blocks_time_statistics():
    torch.manual_seed(0)
    enc = tiny_encoder()
    obj = SimCLR(enc, SimCLRConfig(projection_hidden=16, projection_dim=8, layer="all"))
    x = torch.randn(6, enc.input_samples)
    expected = numpy_block_stats(copy.deepcopy(enc).train(), x)  # same batch, same BN mode
    got = head_input(obj, enc, x).double().numpy()
    assert got.shape == (6, 2 * (4 + 8)) == (6, block_stats_dim(enc))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    last = SimCLR(enc, SimCLRConfig(projection_hidden=16, projection_dim=8))
    assert head_input(last, enc, x).shape == (6, enc.output_dim)


def test_block_stats_dim_leaves_batchnorm_statistics_alone():
    enc = tiny_encoder().train()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    assert block_stats_dim(enc) == 24 and enc.training
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())


def test_a_run_with_all_learns_and_exports_an_encoder_the_probes_load(tmp_path):
    rec = Record()
    cfg = tiny_cfg(tmp_path, "simclr.layer=all")
    pretrain(cfg, dataset=ToyPairs(), sample_rate=SR, callbacks=[rec])
    losses = np.array([r[1] for r in rec.rows])
    first, last = losses[:4].mean(), losses[-8:].mean()
    assert np.isfinite(losses).all() and last < first - MIN_RELATIVE_DROP * abs(first)
    loaded = load_encoder(export_encoder(cfg.run_dir, tmp_path / "enc.pt"))
    assert loaded.config["simclr"]["layer"] == "all"
    x = torch.randn(2, loaded.input_samples)
    with torch.no_grad():
        assert layer_vectors(loaded.encoder, x, "all").shape == (2, 2 * (8 + 16))


@pytest.mark.parametrize("bad", ["first", "", "ALL"])
def test_bad_layer_names_the_key(bad):
    with pytest.raises(ConfigError) as err:
        SimCLRConfig(layer=bad)
    assert "simclr.layer" in str(err.value) and "last" in str(err.value)
