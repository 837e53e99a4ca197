"""Pretrain config and CLI: bad keys/values named; a real cache -> pretrain -> export round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from conftest import tone, write_audio

from audioclr.cli import main
from audioclr.config import load_config, resolve_config_path
from audioclr.errors import CheckpointError, ConfigError
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.export import load_encoder
from audioclr.ssl.module import PretrainModule


@pytest.mark.parametrize(
    "override, key",
    [
        ("trainer.bogus=1", "trainer.bogus"),
        ("trainer.batch_size=1", "trainer.batch_size"),
        ("optim.name=sgd", "optim.name"),
        ("method=moco", "method"),
        ("simclr.temperature=0", "simclr.temperature"),
        ("byol.momentum_base=1.5", "byol.momentum_base"),
        ("vicreg.projection_layers=1", "vicreg.projection_layers"),
        ("barlowtwins.redundancy_weight=-1", "barlowtwins.redundancy_weight"),
        ("cpc.prediction_steps=0", "cpc.prediction_steps"),
        ("trainer.devices=two", "trainer.devices"),
        ("augment.gain.p=2", "augment.gain.p"),
        ("trainer.max_steps=abc", "trainer.max_steps"),
    ],
)
def test_bad_keys_and_values_are_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(PretrainConfig, resolve_config_path("simclr_melcnn", "pretrain"), [override])


def test_bad_encoder_name_and_kwargs_are_named():
    cfg = load_config(PretrainConfig, None, ["model.encoder=resnet"])
    with pytest.raises(ConfigError) as err:
        PretrainModule(cfg, 22050)
    assert "melcnn" in err.value.hint
    cfg = load_config(PretrainConfig, None, ["model.encoder_kwargs.widthz=[4]"])
    with pytest.raises(ConfigError, match="widthz"):
        PretrainModule(cfg, 22050)


def test_unknown_method_lists_the_registered_objectives():
    from audioclr.ssl.objectives import OBJECTIVES

    with pytest.raises(ConfigError) as err:
        load_config(PretrainConfig, None, ["method=moco"])
    assert all(name in str(err.value) for name in OBJECTIVES)


SHIPPED = sorted(
    p.stem for p in resolve_config_path("simclr_melcnn", "pretrain").parent.glob("*.yaml")
)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_build(name):
    from audioclr.ssl.objectives import OBJECTIVES

    cfg = load_config(PretrainConfig, resolve_config_path(name, "pretrain"), ["data.cache=x"])
    module = PretrainModule(cfg, 22050)
    assert name.split("_")[0] == cfg.method or name == "demo"
    assert isinstance(module.objective, OBJECTIVES[cfg.method])
    dim = {"melcnn": 256, "samplecnn": 512}[cfg.model.encoder]
    assert module.encoder.output_dim == dim
    if name == "simclr_samplecnn":  # CLMR: batch 48, tau 0.5, 512 -> 512 -> 64, 59049 samples
        assert (cfg.trainer.batch_size, cfg.simclr.temperature) == (48, 0.5)
        assert module.objective.projection(torch.zeros(2, 512)).shape == (2, 64)
        assert module.encoder.input_samples == 59049


def test_cli_pretrain_on_a_real_cache_then_export(tmp_path, capsys):
    from audioclr.data.prepare import prepare_cache

    sr = 8000
    for i, f in enumerate([220.0, 330.0, 440.0, 660.0, 880.0, 990.0]):
        write_audio(tmp_path / "audio" / f"t{i}.wav", tone(f, sr, 1.5), sr)
    prepare_cache(tmp_path / "audio", tmp_path / "cache", sample_rate=sr, workers=1, progress=False)
    run = tmp_path / "run"
    args = [
        "pretrain",
        "--config",
        "simclr_melcnn",
        f"data.cache={tmp_path / 'cache'}",
        f"run.dir={run}",
        "data.num_workers=0",
        "trainer.max_steps=2",
        "trainer.batch_size=4",
        "trainer.progress=false",
        "augment.pitch.p=0",
        "augment.reverb.p=0",
        "model.encoder_kwargs.widths=[4,8]",
        "model.encoder_kwargs.n_mels=16",
        "model.encoder_kwargs.input_samples=4000",
        "model.encoder_kwargs.n_fft=256",
        "model.encoder_kwargs.hop_length=128",
    ]
    assert main(args) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["cache"] == str(tmp_path / "cache") and saved["trainer"]["max_steps"] == 2
    assert main(["export", str(run), str(tmp_path / "enc.pt")]) == 0
    loaded = load_encoder(tmp_path / "enc.pt")
    assert loaded.sample_rate == sr and loaded.input_samples == 4000
    raw = torch.load(tmp_path / "enc.pt", weights_only=True)
    assert raw["encoder"] == "melcnn" and raw["encoder_kwargs"]["widths"] == [4, 8]
    with torch.no_grad():
        emb = loaded.encoder(torch.from_numpy(tone(440.0, sr, 1.0))[None])
    assert emb.shape == (1, 8) and np.isfinite(emb.numpy()).all()
    # a second run into the same folder without --resume is refused with the reason
    assert main(args) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err
    # a missing cache is named
    assert main(["pretrain", "data.cache=" + str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def test_cli_errors_name_the_key_and_file(tmp_path, capsys):
    assert main(["pretrain", "--config", "simclr_melcnn", "trainer.bogus=3"]) == 2
    assert "trainer.bogus" in capsys.readouterr().err
    assert main(["pretrain", "--config", "simclr_melcnn"]) == 2
    assert "data.cache" in capsys.readouterr().err
    assert main(["pretrain", "--config", "nosuch"]) == 2
    assert "simclr_samplecnn" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "norun"), str(tmp_path / "e.pt")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    with pytest.raises(CheckpointError):
        load_encoder(tmp_path / "e.pt")


def test_augment_on_auto_resolves_by_device_and_workers():
    from audioclr.ssl.train import augment_in_workers

    def cfg(*o):
        return load_config(PretrainConfig, None, list(o))

    assert augment_in_workers(cfg("data.num_workers=2"), on_cuda=False)
    assert not augment_in_workers(cfg("data.num_workers=0"), on_cuda=False)
    assert not augment_in_workers(cfg("data.num_workers=2"), on_cuda=True)
    assert augment_in_workers(cfg("data.augment_on=workers"), on_cuda=True)
    assert not augment_in_workers(cfg("data.augment_on=device"), on_cuda=False)
    with pytest.raises(ConfigError, match="data.augment_on"):
        cfg("data.augment_on=gpu")


def test_augment_preset_fills_the_section_and_explicit_keys_win(tmp_path) -> None:
    import yaml

    from audioclr.augment.config import AugmentConfig
    from audioclr.config import CONFIG_ROOT, load_config
    from audioclr.errors import ConfigError
    from audioclr.ssl.config import PretrainConfig

    timbre = yaml.safe_load((CONFIG_ROOT / "augment" / "timbre.yaml").read_text())
    cfg = load_config(PretrainConfig, None, ["augment_preset=timbre"])
    for section, values in timbre.items():
        for key, value in values.items():
            assert getattr(getattr(cfg.augment, section), key) == value, (section, key)
    assert cfg.augment.pitch.p == 0 and AugmentConfig().pitch.p > 0  # it changed the default
    run = tmp_path / "run.yaml"
    run.write_text("augment_preset: timbre\naugment:\n  pitch: {p: 0.25}\n")
    cfg = load_config(PretrainConfig, run, ["augment.background.p=0.1"])
    assert (cfg.augment.pitch.p, cfg.augment.background.p, cfg.augment.filter.p) == (0.25, 0.1, 0)
    assert load_config(PretrainConfig, run, ["augment_preset=clmr"]).augment.filter.p == 0.8
    with pytest.raises(ConfigError, match="not found") as exc:
        load_config(PretrainConfig, None, ["augment_preset=nope"])
    assert "timbre" in exc.value.hint
