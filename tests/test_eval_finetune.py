"""Fine-tuning heads: frozen layers stay bit-identical, random init = the supervised protocol,
and the probe command end to end with fine-tuning, robustness and labels-saved tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tone
from test_eval_suite import _corpus, _encoder

from audioclr.cli import main
from audioclr.errors import ConfigError
from audioclr.evaluate.finetune import FitSettings, audio_data, fit_classifier, layer_groups
from audioclr.evaluate.probe import run_probe
from audioclr.evaluate.probe_config import ProbeConfig
from audioclr.evaluate.probe_data import ProbeData
from audioclr.evaluate.supervised import train_supervised
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import LoadedEncoder, weights_id

SR = 8000


def _loaded(seed: int = 0) -> LoadedEncoder:
    torch.manual_seed(seed)
    enc = build_encoder(
        "melcnn", SR, widths=[8, 8, 16], n_fft=256, hop_length=128, n_mels=16, input_samples=2000
    ).eval()
    return LoadedEncoder(
        enc, SR, enc.input_samples, enc.layer_names, {}, weights_id(enc.state_dict())
    )


def _waves(rng: np.random.Generator, per_class: int = 6) -> tuple[list[np.ndarray], np.ndarray]:
    y = np.repeat(np.arange(3), per_class)
    freqs = [300.0, 1200.0, 3000.0]
    waves = [(tone(freqs[c], SR, 0.5) + rng.normal(0, 0.05, SR // 2)).astype(np.float32) for c in y]
    return waves, y


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_finetune_k_leaves_the_first_k_layers_bit_identical_and_trains_the_rest(rng):
    loaded = _loaded()
    waves, y = _waves(rng)
    before = [_state(torch.nn.ModuleList(mods)) for _, mods in layer_groups(loaded.encoder)]
    s = FitSettings(epochs=2, batch_size=6, lr=1e-2, device="cpu", frozen=2)
    model, history, _, _ = fit_classifier(loaded, waves, y, False, 3, s)
    after = [_state(torch.nn.ModuleList(mods)) for _, mods in layer_groups(model.encoder)]
    names = [n for n, _ in layer_groups(loaded.encoder)]
    assert names == ["block1", "block2", "block3"]  # block1 includes the input BatchNorm
    for i, (b, a) in enumerate(zip(before, after, strict=True)):
        same = all(torch.equal(b[k], a[k]) for k in b)  # weights and BatchNorm running stats
        assert same == (i < 2), names[i]
    assert len(history) == 2
    assert weights_id(loaded.encoder.state_dict()) == loaded.encoder_id  # a copy was trained
    with pytest.raises(ConfigError, match="finetune:3 freezes 3 layers"):
        fit_classifier(loaded, waves, y, False, 3, FitSettings(epochs=1, device="cpu", frozen=3))


def test_finetuning_random_init_is_the_supervised_baselines_training(rng):
    """Without a valid split the finetune head trains the fixed epochs with the first rate:
    the weights it reaches are those of the supervised baseline with the same seed."""
    fresh = _loaded(seed=5)
    waves, y = _waves(rng, per_class=4)
    n = len(y)
    splits = np.array(["train", "test"] * (n // 2))
    labels = ProbeData(
        np.zeros((n, 0), np.float32), np.arange(n), y, splits, ["a", "b", "c"], False
    )
    data = audio_data(labels, dict(enumerate(waves)), fresh, device="cpu")
    cfg = ProbeConfig(
        head="finetune", finetune_lrs=[1e-2, 1e-3], finetune_epochs=3, finetune_batch_size=4
    )
    with pytest.warns(UserWarning, match="no validation tracks: fine-tuning"):
        res = run_probe(data, cfg, fractions=[1.0], seeds=[7])
    run = res["1.0"]["runs"][0]
    train = np.flatnonzero(splits == "train")
    trained, _ = train_supervised(
        fresh,
        [waves[i] for i in train],
        y[train],
        False,
        3,
        epochs=3,
        batch_size=4,
        lr=1e-2,
        seed=7,
        device="cpu",
        progress=False,
    )
    assert run["lr"] == 1e-2 and run["epochs"] == 3 and run["frozen_layers"] == 0
    assert run["encoder_id"] == trained.encoder_id != fresh.encoder_id


def test_probe_command_with_finetune_heads_and_corruptions(tmp_path, rng):
    labels, enc = _corpus(tmp_path, rng), _encoder(tmp_path)
    out = tmp_path / "out"
    argv = [
        "probe",
        str(enc),
        str(labels),
        str(out),
        "--heads",
        "linear",
        "finetune",
        "finetune:1",
        "--corruptions",
        "noise:10",
        "task.fractions=[0.5,1.0]",
        "task.seeds=[0]",
        "random_init_draws=1",
        "device=cpu",
        "probe.weight_decays=[0.0]",
        "probe.finetune_epochs=2",
        "probe.finetune_lrs=[0.001]",
    ]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    task = report["tasks"]["labels"]
    assert set(task["results"]["encoder"]) == {"linear", "finetune", "finetune:1"}
    assert set(task["results"]["mfcc"]) == {"linear"}  # nothing to fine-tune
    run = task["results"]["encoder"]["finetune:1"]["1.0"]["runs"][0]
    assert run["frozen_layers"] == 1 and run["lr"] == 0.001
    for method, head in [("encoder", "finetune:1"), ("mfcc", "linear"), ("random_init", "linear")]:
        cell = task["results"][method][head]["1.0"]["corrupted"]["noise:10"]
        clean = task["results"][method][head]["1.0"]["accuracy"]["mean"]
        assert cell["drop"]["diff"] == pytest.approx(clean - cell["accuracy"]["mean"])
        assert len(cell["accuracy"]["ci95"]) == 2
    assert task["labels_saved"]["reference"]["head"] == "finetune"
    assert set(task["labels_saved"]["heads"]) == {"linear", "finetune", "finetune:1"}
    assert "rule" in report["aggregate"]
    md = (out / "report.md").read_text()
    assert "| method | head | labels | clean | noise:10 |" in md
    assert any(line.startswith("| encoder | finetune:1 | 1 | ") for line in md.splitlines())
    assert "labels saved: reference = random_init with head finetune" in md
