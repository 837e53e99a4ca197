"""Every objective of the registry: it learns, it resumes exactly, BYOL's teacher follows the
schedule, and checkpoints from before objectives were units still resume."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from test_ssl_train import SR, Record, ToyPairs, full_then_crash, resume, tiny_cfg

from audioclr.errors import ConfigError
from audioclr.ssl.checkpoint import LEGACY_PREFIXES, read_run_checkpoint, rename_legacy_keys
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.export import export_encoder, load_encoder
from audioclr.ssl.objectives import OBJECTIVES, BYOLConfig, build_objective
from audioclr.ssl.objectives.byol import BYOL
from audioclr.ssl.train import pretrain

NAMES = sorted(OBJECTIVES)
FIGURES = ("pos_acc", "emb_std", "alignment", "uniformity")
# Relative drop (first 4 losses -> last 8, as a share of |first|) measured over trainer.seed 0
# and 1 at 40 steps, batch 16: simclr 0.59-0.62, cpc 0.15-0.16, byol > 2, vicreg 0.15-0.19,
# barlowtwins 0.79. The bar is under half the smallest of them.
MIN_RELATIVE_DROP = 0.07


def tiny_encoder():
    return build_encoder(
        "melcnn",
        SR,
        widths=[4, 8],
        n_mels=16,
        n_fft=256,
        hop_length=128,
        input_samples=2000,
        time_strides=[2, 1],
    )


def test_registry_and_config_sections_agree():
    fields = {f.name: f for f in dataclasses.fields(PretrainConfig)}
    cfg = PretrainConfig()
    for name, objective in OBJECTIVES.items():
        assert name in fields, f"PretrainConfig needs a section {name!r}"
        assert type(getattr(cfg, name)) is objective.config
    with pytest.raises(ConfigError) as err:
        build_objective("moco", tiny_encoder(), cfg.simclr)
    assert "'method'" in str(err.value) and all(n in err.value.hint for n in OBJECTIVES)


class Figures(pl.Callback):
    """The logged figure names of the last step."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.keys = set(trainer.callback_metrics)


@pytest.mark.parametrize("name", NAMES)
def test_loss_falls_on_the_toy_set(tmp_path, name):
    rec, figures = Record(), Figures()
    pretrain(
        tiny_cfg(tmp_path, method=name),
        dataset=ToyPairs(),
        sample_rate=SR,
        callbacks=[rec, figures],
    )
    losses = np.array([r[1] for r in rec.rows])
    assert len(losses) == 40 and np.isfinite(losses).all()
    first, last = losses[:4].mean(), losses[-8:].mean()
    assert last < first - MIN_RELATIVE_DROP * abs(first), (first, last)
    assert {f"train/{k}" for k in FIGURES} <= figures.keys


@pytest.mark.parametrize("name", NAMES)
def test_every_objective_trains_under_bfloat16_autocast(tmp_path, name):
    """What trainer.precision=bf16-mixed (auto on CUDA and on CPUs with native bfloat16) runs:
    heads under autocast, the loss in float32, gradients reaching the encoder's weights."""
    cfg = tiny_cfg(tmp_path, method=name)
    enc = tiny_encoder()
    objective = build_objective(name, enc, getattr(cfg, name))
    views = 2 + len(objective.groups)
    x = torch.randn(views * 8, enc.input_samples, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, stats = objective.loss(enc, x, None, torch.Generator().manual_seed(1))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in enc.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_resume_gives_the_uninterrupted_losses_and_weights(tmp_path, name):
    extra = ("trainer.max_steps=6", "trainer.checkpoint_every=3", "trainer.batch_size=4")
    full, cfg_b = full_then_crash(tmp_path, *extra, stop_at=4, method=name)
    resumed = resume(cfg_b)  # from last.ckpt = step 3
    assert [r[0] for r in resumed.rows] == [4, 5, 6]
    np.testing.assert_allclose(
        [r[1] for r in resumed.rows], [r[1] for r in full.rows[3:]], rtol=0, atol=1e-6
    )
    final_a = torch.load(tmp_path / "a/run/checkpoints/last.ckpt", weights_only=True)
    final_b = torch.load(tmp_path / "b/run/checkpoints/last.ckpt", weights_only=True)
    state_a, state_b = final_a["state_dict"], final_b["state_dict"]
    assert state_a.keys() == state_b.keys()
    assert any(k.startswith("objective.") for k in state_a)  # heads (and teacher) included
    for k in state_a:
        torch.testing.assert_close(state_b[k], state_a[k], rtol=0, atol=1e-6, msg=k)
    # the exported encoder is the student's encoder, whatever else the objective holds
    loaded = load_encoder(export_encoder(tmp_path / "b/run", tmp_path / "enc.pt"))
    for k, v in loaded.encoder.state_dict().items():
        assert torch.equal(v, state_b[f"encoder.{k}"])


def expected_momentum(step: int, max_steps: int, base: float) -> float:
    """BYOL's cosine, written out: ``base`` at step 0, 1.0 at the last step."""
    return 1 - (1 - base) * (math.cos(math.pi * step / (max_steps - 1)) + 1) / 2


def test_byol_momentum_schedule_ends():
    obj = BYOL(
        tiny_encoder(),
        BYOLConfig(projection_hidden=8, projection_dim=4, prediction_hidden=8, momentum_base=0.9),
    )
    assert obj.momentum(0, 10) == pytest.approx(0.9)
    assert obj.momentum(9, 10) == 1.0
    assert obj.momentum(3, 10) == pytest.approx(expected_momentum(3, 10, 0.9))


def student_and_teacher(module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    obj = module.objective
    student = [*module.encoder.parameters(), *obj.projection.parameters()]
    teacher = [*obj.teacher_encoder.parameters(), *obj.teacher_projection.parameters()]
    return [p.detach().clone() for p in student], [p.detach().clone() for p in teacher]


class TeacherTrace(pl.Callback):
    """Per step: (step, teacher before, student after, teacher after)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, list, list, list]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.step, self.before = trainer.global_step, student_and_teacher(module)[1]

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        student, teacher = student_and_teacher(module)
        self.rows.append((self.step, self.before, student, teacher))


def test_byol_teacher_moves_toward_the_student_by_the_scheduled_momentum(tmp_path):
    steps, base = 4, 0.7
    trace = TeacherTrace()
    cfg = tiny_cfg(
        tmp_path,
        f"trainer.max_steps={steps}",
        "trainer.batch_size=4",
        f"byol.momentum_base={base}",
        method="byol",
    )
    pretrain(cfg, dataset=ToyPairs(), sample_rate=SR, callbacks=[trace])
    assert [r[0] for r in trace.rows] == list(range(steps))
    # the teacher starts as a copy of the student and has no trainable parameters
    assert all(
        torch.equal(t, s) for t, s in zip(*student_and_teacher(pretrain_module(cfg)), strict=True)
    )
    for step, before, student, after in trace.rows:
        m = expected_momentum(step, steps, base)
        for t0, s, t1 in zip(before, student, after, strict=True):
            torch.testing.assert_close(t1, m * t0 + (1 - m) * s, rtol=0, atol=1e-6)
        if step < steps - 1:  # m < 1: the teacher moved
            assert any(not torch.equal(t0, t1) for t0, t1 in zip(before, after, strict=True))


def pretrain_module(cfg):
    from audioclr.ssl.module import PretrainModule

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.trainer.seed)
        module = PretrainModule(cfg, SR)
    assert not any(p.requires_grad for p in module.objective.teacher_encoder.parameters())
    return module


def test_legacy_keys_move_under_objective():
    state = {
        "encoder.w": 1,
        "projection.layers.0.weight": 2,
        "cpc.gru.weight_ih_l0": 3,
        "criterion.memory_bank.bank": 4,
    }
    assert rename_legacy_keys(state) == {
        "encoder.w": 1,
        "objective.projection.layers.0.weight": 2,
        "objective.head.gru.weight_ih_l0": 3,
        "objective.criterion.memory_bank.bank": 4,
    }


@pytest.mark.parametrize("name", ["simclr", "cpc"])
def test_checkpoint_from_before_objectives_resumes_exactly(tmp_path, name):
    extra = ("trainer.max_steps=4", "trainer.checkpoint_every=2", "trainer.batch_size=4")
    full, cfg_b = full_then_crash(tmp_path, *extra, stop_at=3, method=name)
    last = tmp_path / "b/run/checkpoints/last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    old_names = {new: old for old, new in LEGACY_PREFIXES.items()}

    def legacy(key: str) -> str:
        prefix = next((p for p in old_names if key.startswith(p)), None)
        return key if prefix is None else old_names[prefix] + key[len(prefix) :]

    ckpt["state_dict"] = {legacy(k): v for k, v in ckpt["state_dict"].items()}
    assert not any(k.startswith("objective.") for k in ckpt["state_dict"])
    torch.save(ckpt, last)
    assert read_run_checkpoint(last)[1]  # the encoder reads as before
    resumed = resume(cfg_b)
    np.testing.assert_allclose(
        [r[1] for r in resumed.rows], [r[1] for r in full.rows[2:]], rtol=0, atol=1e-6
    )
