"""What every evaluation method shares, and the ``Method`` interface each one implements.

``Source`` is what the user gave (an exported encoder, or an embeddings folder used as is),
``TrackSet`` the tracks of one task (all of them, the training split, its labels),
``MethodSettings`` how to embed, ``Embedded`` one embedding draw (track vectors, optional window
vectors, its folder). A method embeds a ``TrackSet`` into one ``Embedded`` per draw (one for
fixed representations, one per init seed for random weights), cached in the folder it is given.

Example:
    >>> source = Source.open("enc.pt")
    >>> data = TrackSet(open_tracks("labels.csv", source.sample_rate), key="labels.csv")
    >>> method = get_method("mfcc")
    >>> draws = method.embed(source, data, MethodSettings(), Path("out/emb/mfcc"))
    >>> draws[0].emb.dim
    80
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from audioclr.errors import AudioclrError
from audioclr.evaluate.store import EmbeddingSet, load_embeddings
from audioclr.evaluate.tracks import Track

if TYPE_CHECKING:
    from audioclr.ssl.export import LoadedEncoder

DEFAULT_RATE = 22050  # an embeddings folder that does not record its sample rate


def slug(*parts: Any) -> str:
    """A short hash naming a cache folder (or checking one) from the settings that made it."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


@dataclass
class Source:
    """What the user gave: an exported encoder (``.pt``) or an embeddings folder."""

    path: Path
    given: EmbeddingSet | None = None  # the embeddings folder's vectors, when one was given

    @classmethod
    def open(cls, path: str | Path) -> Source:
        """An embeddings folder (loaded) or an exported encoder (loaded when first needed)."""
        path = Path(path)
        return cls(path, load_embeddings(path) if path.is_dir() else None)

    @property
    def encoder_path(self) -> Path | None:
        """The exported encoder: the given file, or the existing one an embeddings folder names."""
        if self.given is None:
            return self.path
        named = self.given.meta.get("encoder_path")
        return Path(named) if named and Path(named).is_file() else None

    def load(self, random_init_seed: int | None = None) -> LoadedEncoder:
        """The exported encoder (``random_init_seed``: same architecture, fresh weights)."""
        from audioclr.ssl.export import load_encoder

        if self.encoder_path is None:
            raise AudioclrError(
                f"{self.path} is an embeddings folder that names no existing encoder",
                hint="pass --encoder ENC.pt",
            )
        if random_init_seed is None:
            return self._trained
        return load_encoder(self.encoder_path, random_init_seed=random_init_seed)

    def provenance(self, method: str) -> dict[str, Any]:
        """The ``meta`` a method's embeddings record: its name and the encoder it came from."""
        path = self.encoder_path
        return {"encoder_path": str(path.resolve()) if path else None, "method": method}

    @cached_property
    def _trained(self) -> Any:
        from audioclr.ssl.export import load_encoder

        return load_encoder(self.encoder_path)

    @property
    def sample_rate(self) -> int:
        """The rate every method embeds at: the given folder's, else the encoder's."""
        if self.given is not None:
            return int(self.given.meta.get("sample_rate", DEFAULT_RATE))
        return int(self.load().sample_rate)

    @property
    def encoder_id(self) -> str | None:
        """The given folder's ``encoder_id``, else the exported encoder's."""
        return self.given.meta.get("encoder_id") if self.given else self.load().encoder_id

    def layer_and_hop(self, layer: str, hop_seconds: float | None) -> tuple[str, float | None]:
        """A given folder's layer and hop (so every method matches it), else the ones asked."""
        if self.given is None:
            return layer, hop_seconds
        meta = self.given.meta
        hop, rate = meta.get("hop_samples"), meta.get("sample_rate")
        return meta.get("layer", layer), (hop / rate if hop and rate else hop_seconds)


@dataclass
class TrackSet:
    """The tracks of one task: every track to embed, the training split alone, its labels.

    ``train`` feeds BatchNorm re-estimation (no labels) and supervised training; ``targets``
    (aligned with ``train``: ``(n,)`` class indices or ``(n, classes)`` multi-hot) only the latter.
    """

    tracks: Sequence[Track]
    key: str  # names the data in cache keys (the task's data or labels path)
    train: Sequence[Track] = ()
    targets: np.ndarray | None = None
    multilabel: bool = False
    n_classes: int = 0


ENCODER_BN = ("pretraining", "task")  # where the encoder's BatchNorm statistics come from


def check_encoder_bn(value: str, key: str) -> str:
    """``value`` if one of :data:`ENCODER_BN`; else ``ConfigError`` naming ``key``."""
    from audioclr.config import require

    require(value in ENCODER_BN, key, value, f"must be one of {list(ENCODER_BN)}")
    return value


@dataclass
class MethodSettings:
    """How a method embeds: layer, hop, batching, device, and its init draws."""

    layer: str = "all"  # every block's mean and std over time (the default representation)
    hop_seconds: float | None = None
    windows: bool = False  # also keep per-window vectors (``FOLDER/windows``)
    batch_size: int = 64
    device: str = "auto"
    seed: int = 0  # random_init_seed: draw i of a random-weight method uses seed + i
    draws: int = 1  # random_init_draws
    supervised_epochs: int = 20
    progress: bool = True
    # the encoder's BatchNorm running statistics: "pretraining" (as exported) or "task"
    # (re-estimated on the task's training audio, no labels: what random_init gets)
    encoder_bn: str = "pretraining"

    @property
    def seeds(self) -> list[int]:
        """The init seed of every draw."""
        return [self.seed + i for i in range(self.draws)]


@dataclass
class Embedded:
    """One draw of a method: track vectors, window vectors when asked, and their folder."""

    emb: EmbeddingSet
    windows: EmbeddingSet | None = None
    folder: Path | None = None

    @property
    def info(self) -> dict[str, Any]:
        """What report.json records of the draw (seed, encoder id, BatchNorm re-estimation)."""
        keys = ("init_seed", "encoder_id", "bn_reestimation", "supervised_epochs", "final_loss")
        keys += ("model_sample_rate", "resampled_from")  # a HEAR model's rate, when resampled
        meta = self.emb.meta
        return {"folder": str(self.folder), **{k: meta[k] for k in keys if k in meta}}


def with_windows(folder: Path, windows: bool, emb: EmbeddingSet | None = None) -> Embedded:
    """The ``Embedded`` of an embeddings folder (its ``windows/`` too when ``windows``)."""
    if windows and not (folder / "windows").is_dir():
        raise AudioclrError(
            f"{folder} has no windows/ to probe windows with",
            hint="re-embed with --keep-windows, or drop windows from the task",
        )
    emb = emb if emb is not None else load_embeddings(folder)
    return Embedded(emb, load_embeddings(folder / "windows") if windows else None, folder)


def finished(folder: Path, key: str, windows: bool) -> Embedded | None:
    """A finished folder made with the same ``cache_key`` (reused without recomputing)."""
    try:
        emb = load_embeddings(folder)
    except AudioclrError:
        return None
    if emb.meta.get("cache_key") != key or (windows and not (folder / "windows").is_dir()):
        return None
    return with_windows(folder, windows, emb)


def embed_loaded(
    loaded: LoadedEncoder,
    data: TrackSet,
    settings: MethodSettings,
    folder: Path,
    meta: dict[str, Any],
) -> Embedded:
    """Embed every track of ``data`` with ``loaded`` into ``folder`` (resumable by chunks)."""
    from audioclr.evaluate.embed import embed_track_list

    emb = embed_track_list(
        loaded,
        data.tracks,
        folder,
        settings.layer,
        settings.hop_seconds,
        settings.batch_size,
        settings.windows,
        settings.device,
        meta,
        progress=settings.progress,
    )
    return with_windows(folder, settings.windows, emb)


class Method(ABC):
    """One representation to evaluate; a subclass per module, registered in ``METHODS``."""

    name: ClassVar[str]  # the registry key, as written in configs
    display: str  # the name in reports ("SSL", "random-init", ...)
    baseline: ClassVar[bool] = True  # the encoder must beat it
    needs_encoder: ClassVar[bool] = False  # needs an exported encoder (not only embeddings)
    needs_labels: ClassVar[bool] = False  # trains on the task's training labels
    argument: ClassVar[str | None] = None  # e.g. "<module>": configs write "name:<module>"

    @property
    def folder(self) -> str:
        """Its folder under ``OUT/emb/`` (the registry name; a method with an argument adds it)."""
        return self.name

    def check(self) -> None:
        """``ConfigError`` when the method cannot run here (checked when a config names it)."""
        return None  # every built-in method can

    def cache_key(self, source: Source, data: TrackSet, settings: MethodSettings) -> str:
        """The cache folder's name under ``OUT/emb/<method>/`` for these data and settings.

        By default ``<layer>-<hash of the data and windows>`` (an encoder's embeddings).
        """
        return f"{settings.layer}-{slug(data.key, settings.windows)}"

    @abstractmethod
    def embed(
        self, source: Source, data: TrackSet, settings: MethodSettings, folder: Path
    ) -> list[Embedded]:
        """Embed ``data`` into ``folder`` (reusing what a finished or interrupted run left)."""

    def finetune_starts(
        self, source: Source, data: TrackSet, settings: MethodSettings
    ) -> list[LoadedEncoder]:
        """The encoders the fine-tuning heads start from, one per draw (``evaluate/finetune.py``);
        ``[]``: nothing to fine-tune (the heads are skipped for this method)."""
        return []

    def record(self, settings: MethodSettings) -> dict[str, Any]:
        """What report.json says this method was (display name, role, settings it used)."""
        return {
            "display": self.display,
            "baseline": self.baseline,
            "layer": settings.layer,
            "hop_seconds": settings.hop_seconds,
        }
