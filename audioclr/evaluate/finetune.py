"""Fine-tuning and layer transfer as probe heads: ``finetune`` and ``finetune:K``.

The encoder plus a new linear head on its last-layer embedding (``encoder(x)``, the pooled
output: what fine-tuning adapts, and what the supervised baseline trains) is trained on the
labelled training tracks with cross-entropy (single-label) or BCE (multi-label): each epoch one
random crop of ``input_samples`` per track (zero-padded when shorter), optionally through the
batched waveform augmentation (``BatchedAugment``; SpecAugment masks are not applied), Adam.
``finetune:K`` freezes the layers up to the K-th of ``layer_names`` (with everything computed
before it, e.g. melcnn's input BatchNorm): their weights get no gradient and their modules stay
in ``eval()``, so BatchNorm running statistics do not move either; the weights stay bit-identical.

One training loop, :func:`fit_classifier`, serves the fine-tuning heads and the supervised
baseline (``evaluate/supervised.py``): fine-tuning random-init weights *is* supervised training
from scratch. As a probe head (:func:`finetune_once`, called by ``run_probe`` with the same
label fractions, seeds and splits as every head) it picks the learning rate of
``probe.finetune_lrs`` and the epoch (early stopping, ``finetune_patience``) on the valid split
(track-level primary metric, ties broken by window loss); without a valid split it trains the
fixed ``finetune_epochs`` with the first learning rate, the supervised baseline's protocol.
Valid and test tracks are scored as the frozen probes are: windows cut as ``embed`` cuts them
(the task's hop), window probabilities averaged per track. On CUDA it runs under autocast
(bfloat16 where supported, else float16 with a gradient scaler). Tracks are held in memory: meant
for labelled sets of up to a few thousand clips.

Example:
    >>> data = audio_data(labels, waves, start=load_encoder("enc.pt"), hop=59049)
    >>> res = run_probe(data, ProbeConfig(head="finetune:2"), fractions=[0.1, 1.0], seeds=[0])
    >>> res["1.0"]["runs"][0]["lr"], res["1.0"]["runs"][0]["frozen_layers"]
    (0.001, 2)
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from audioclr.errors import ConfigError
from audioclr.evaluate.embed import cut_windows
from audioclr.evaluate.frozen import resolve_device
from audioclr.evaluate.intervals import TEST_SCORES, TrackScores
from audioclr.evaluate.metrics import primary_metric, score_all
from audioclr.evaluate.probe_config import frozen_layers
from audioclr.evaluate.probe_data import ProbeData
from audioclr.evaluate.probe_fit import track_scores

if TYPE_CHECKING:
    from audioclr.augment.batched import BatchedAugment
    from audioclr.evaluate.probe_config import ProbeConfig
    from audioclr.ssl.export import LoadedEncoder


def layer_groups(encoder: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """Each layer of ``encoder.layer_names`` (but the pooled embedding) with the modules that
    compute it; modules before the first layer (front-end, input norm) join it."""
    out: list[tuple[str, list[nn.Module]]] = []
    pending: list[nn.Module] = []
    for name, child in encoder.named_children():
        parts = (
            [(f"block{i + 1}", m) for i, m in enumerate(child)]
            if name == "blocks"
            else [(name, child)]
        )
        for layer, module in parts:
            pending.append(module)
            if layer in encoder.layer_names:
                out.append((layer, pending))
                pending = []
    return out


def freeze_first(encoder: nn.Module, k: int) -> list[nn.Module]:
    """Freeze the first ``k`` layer groups (no gradient, ``eval()``); returns their modules.

    ``ConfigError`` unless ``0 <= k < `` the number of layers (one must stay trainable).
    """
    groups = layer_groups(encoder)
    if not 0 <= k < len(groups):
        raise ConfigError(
            f"head finetune:{k} freezes {k} layers; the encoder has {len(groups)} "
            f"({', '.join(n for n, _ in groups)}) and one must stay trainable",
            hint=f"use finetune:K with K < {len(groups)}",
        )
    frozen = [m for _, modules in groups[:k] for m in modules]
    for module in frozen:
        module.requires_grad_(False).eval()
    return frozen


class Classifier(nn.Module):
    """``encoder`` + a linear ``head`` on its pooled output: ``(batch, samples)`` -> logits.

    ``train()`` leaves the ``frozen`` modules in ``eval()`` (their BatchNorm statistics fixed).
    """

    def __init__(self, encoder: nn.Module, n_classes: int, seed: int, frozen: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(int(encoder.output_dim), n_classes)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            bound = 1 / np.sqrt(self.head.in_features)
            self.head.weight.copy_(
                (torch.rand(self.head.weight.shape, generator=gen) * 2 - 1) * bound
            )
            self.head.bias.zero_()
        self.frozen = freeze_first(encoder, frozen)

    def train(self, mode: bool = True) -> Classifier:
        """As ``nn.Module.train``, but frozen layers stay in ``eval()``."""
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` -> ``(batch, classes)`` logits."""
        return self.head(self.encoder(x))


def random_crop(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """``(samples,)`` -> ``(length,)``: a random crop, or zero-padded when shorter."""
    if x.shape[0] <= length:
        return np.pad(x, (0, length - x.shape[0]))
    start = int(rng.integers(0, x.shape[0] - length + 1))
    return x[start : start + length]


def autocast(device: torch.device) -> tuple[Any, torch.amp.GradScaler]:
    """The autocast context and gradient scaler of ``device`` (CPU: full precision)."""
    if device.type != "cuda":
        return torch.autocast("cpu", enabled=False), torch.amp.GradScaler("cpu", enabled=False)
    bf16 = torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float16
    return torch.autocast("cuda", dtype=dtype), torch.amp.GradScaler("cuda", enabled=not bf16)


@dataclass
class FitSettings:
    """How :func:`fit_classifier` trains. ``patience`` None: the fixed ``epochs`` (no early
    stopping); ``frozen``: layers to freeze; ``augment``: the waveform chain, or None."""

    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    frozen: int = 0
    patience: int | None = None
    augment: BatchedAugment | None = None
    progress: bool = False


Validate = Callable[[nn.Module], tuple[float, float]]


def fit_classifier(
    loaded: LoadedEncoder,
    waves: Sequence[np.ndarray],
    targets: np.ndarray,
    multilabel: bool,
    n_classes: int,
    s: FitSettings,
    validate: Validate | None = None,
) -> tuple[Classifier, list[float], int, tuple[float, float] | None]:
    """Train a copy of ``loaded.encoder`` + a linear head on random crops of ``waves``.

    ``waves``: ``(samples,)`` float32 each; ``targets``: ``(n,)`` class indices or ``(n,
    classes)`` multi-hot. ``validate(model)`` (after each epoch, when given) returns the
    (metric, -loss) to maximise; the best epoch's weights are kept and training stops after
    ``s.patience`` epochs without improvement. Returns (the model in ``eval()``, the mean
    training loss of each epoch, the epoch kept, its validation score or None).
    """
    dev = resolve_device(s.device)
    model = Classifier(copy.deepcopy(loaded.encoder), n_classes, s.seed, s.frozen).to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=s.lr)
    loss_fn = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()
    y_all = torch.as_tensor(np.asarray(targets))
    y_all = y_all.float() if multilabel else y_all.long()
    rng = np.random.default_rng(s.seed)
    gen = torch.Generator(device=dev).manual_seed(s.seed)
    cast, scaler = autocast(dev)
    length = int(loaded.input_samples)
    history: list[float] = []
    best, best_epoch, best_state = None, s.epochs, None
    for epoch in tqdm(range(1, s.epochs + 1), desc="fine-tune", disable=not s.progress):
        model.train()
        order, losses = rng.permutation(len(waves)), []
        for lo in range(0, len(order), s.batch_size):
            idx = order[lo : lo + s.batch_size]
            if len(idx) < 2 < len(order):  # BatchNorm in training needs two examples
                continue
            x = np.stack([random_crop(np.asarray(waves[i], np.float32), length, rng) for i in idx])
            xb = torch.from_numpy(x).to(dev)
            if s.augment is not None:
                xb = s.augment(xb, gen)
            with cast:
                loss = loss_fn(model(xb).float(), y_all[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)) if losses else float("nan"))
        if validate is None:
            continue
        score = validate(model)
        if best is None or score > best:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif s.patience is not None and epoch - best_epoch >= s.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), history, best_epoch, best


@dataclass
class AudioData(ProbeData):
    """A labelled set as audio for the fine-tuning heads: one row per track (``x`` is empty),
    ``waves`` ``{track index: (samples,)}``, the encoder fine-tuning ``start``s from, the hop
    that cuts valid/test windows, and the device. ``corrupted`` holds ``AudioData`` whose test
    tracks' waves are corrupted."""

    waves: dict[int, np.ndarray] = field(default_factory=dict)
    start: Any = None  # LoadedEncoder
    hop: int = 0
    device: str = "auto"


def audio_data(
    labels: ProbeData,
    waves: dict[int, np.ndarray],
    start: LoadedEncoder,
    hop: int | None = None,
    device: str = "auto",
) -> AudioData:
    """``AudioData`` with the targets, splits and classes of ``labels`` (a ``ProbeData`` of the
    same labelled set) and the given waves, start encoder and hop (default: the window)."""
    n = len(labels.targets)
    return AudioData(
        np.zeros((n, 0), np.float32),
        np.arange(n),
        labels.targets,
        labels.splits,
        labels.classes,
        labels.multilabel,
        groups=labels.groups,
        waves=waves,
        start=start,
        hop=int(hop or start.input_samples),
        device=device,
    )


def predict_audio(
    model: nn.Module, data: AudioData, tracks: np.ndarray, batch_size: int
) -> tuple[np.ndarray, float]:
    """Track-level ``(tracks, classes)`` probabilities (window probabilities averaged) and the
    mean window loss of ``tracks``."""
    window = int(data.start.input_samples)
    min_samples = int(getattr(data.start.encoder, "min_samples", 1))
    rows, owner = [], []
    for t in tracks:
        for w in cut_windows(
            np.asarray(data.waves[int(t)], np.float32), window, data.hop, min_samples
        ):
            rows.append(np.pad(w, (0, window - len(w))) if len(w) < window else w)
            owner.append(int(t))
    dev = next(model.parameters()).device
    cast, _ = autocast(dev)
    model.eval()
    logits = []
    with torch.no_grad(), cast:
        for lo in range(0, len(rows), batch_size):
            x = torch.from_numpy(np.stack(rows[lo : lo + batch_size])).to(dev)
            logits.append(model(x).float().cpu())
    z = torch.cat(logits)
    owner_arr = np.asarray(owner)
    y = torch.as_tensor(np.asarray(data.targets)[owner_arr])
    if data.multilabel:
        loss = float(nn.functional.binary_cross_entropy_with_logits(z, y.float()))
        probs = torch.sigmoid(z)
    else:
        loss = float(nn.functional.cross_entropy(z, y.long()))
        probs = torch.softmax(z, dim=1)
    return track_scores(probs.numpy(), owner_arr, tracks), loss


def augmenter(name: str, loaded: LoadedEncoder) -> BatchedAugment | None:
    """The fine-tuning augmentation ``probe.finetune_augment``: None for ``none``; the encoder's
    pretraining ``augment`` section for ``pretraining``; else a preset of ``configs/augment``."""
    from audioclr.augment.batched import BatchedAugment
    from audioclr.augment.config import AugmentConfig
    from audioclr.config import load_config, resolve_config_path

    if name == "none":
        return None
    if name == "pretraining":
        section = (loaded.config or {}).get("augment")
        if not section:
            raise ConfigError(
                "probe.finetune_augment=pretraining: the encoder records no augment section",
                hint="name a preset instead, e.g. probe.finetune_augment=timbre",
            )
        cfg = load_config(AugmentConfig, None, base=section)
    else:
        cfg = load_config(AugmentConfig, resolve_config_path(name, "augment"))
    return BatchedAugment(cfg, int(loaded.sample_rate))


def finetune_once(
    data: AudioData, train_tracks: np.ndarray, cfg: ProbeConfig, seed: int
) -> dict[str, Any]:
    """Fine-tune on ``train_tracks`` (learning rate and epoch chosen on the valid split), score
    the test split (and each corrupted test split): ``probe_once``'s result for this head."""
    from audioclr.ssl.export import weights_id

    k = frozen_layers(cfg.head) or 0
    valid = data.split_indices("valid")
    test = data.split_indices("test")
    waves = [data.waves[int(t)] for t in train_tracks]
    targets = np.asarray(data.targets)[train_tracks]
    batch = cfg.finetune_batch_size
    settings = FitSettings(
        epochs=cfg.finetune_epochs,
        batch_size=batch,
        seed=seed,
        device=data.device,
        frozen=k,
        patience=cfg.finetune_patience if len(valid) else None,
        augment=augmenter(cfg.finetune_augment, data.start),
    )
    metric = primary_metric(data.multilabel)

    def validate(model: nn.Module) -> tuple[float, float]:
        probs, loss = predict_audio(model, data, valid, batch)
        return score_all(np.asarray(data.targets)[valid], probs, data.multilabel)[metric], -loss

    fits = []
    for lr in cfg.finetune_lrs if len(valid) else cfg.finetune_lrs[:1]:
        fit = fit_classifier(
            data.start,
            waves,
            targets,
            data.multilabel,
            len(data.classes),
            dataclasses.replace(settings, lr=lr),
            validate if len(valid) else None,
        )
        fits.append((fit, lr))
    (model, _, epoch, _), lr = max(fits, key=lambda f: f[0][3] or (0.0, 0.0))
    out = _scored(model, data, test, batch)
    corrupted = {name: _scored(model, alt, test, batch) for name, alt in data.corrupted.items()}
    encoder_id = weights_id(model.encoder.state_dict())
    return {
        **out,
        "lr": lr,
        "epochs": epoch,
        "frozen_layers": k,
        "encoder_id": encoder_id,
        "train_rows": len(train_tracks),
        **({"corrupted": corrupted} if corrupted else {}),
    }


def _scored(model: nn.Module, data: AudioData, test: np.ndarray, batch: int) -> dict[str, Any]:
    probs, _ = predict_audio(model, data, test, batch)
    y = np.asarray(data.targets)[test]
    groups = None if data.groups is None else data.groups[test]
    scores = TrackScores(test, y, probs, groups)
    return {**score_all(y, probs, data.multilabel), TEST_SCORES: scores}
