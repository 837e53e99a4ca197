"""Embeddings of one method for one probe task, cached under ``OUT/emb/<method>/...``.

``encoder`` is the given exported encoder (or a given embeddings folder, used as is);
``random_init`` is the same architecture with fresh weights, embedded with the same layer and
hop; ``supervised`` is that random-init encoder trained from scratch on the task's training
labels (``supervised.py``); ``mfcc`` is MFCC statistics. Reruns reuse (and resume) cached folders.

Example:
    >>> emb, windows = MethodEmbedder(cfg, "enc.pt", out)("random_init", task, labelled)
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioclr.errors import AudioclrError
from audioclr.evaluate.report import ENCODER
from audioclr.evaluate.store import EmbeddingSet, load_embeddings
from audioclr.evaluate.tracks import Track, open_tracks, tracks_of_files

if TYPE_CHECKING:
    from audioclr.evaluate.suite import SuiteConfig, TaskConfig


def _slug(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def task_tracks(task: TaskConfig, labelled: Any, sample_rate: int) -> list[Track]:
    """The task's audio: its `data` (folder or clip cache), else the labelled files."""
    return (
        open_tracks(task.data, sample_rate)
        if task.data
        else tracks_of_files(labelled.paths, sample_rate)
    )


class MethodEmbedder:
    """Embeds (or loads cached) vectors of one method for one task."""

    def __init__(self, cfg: SuiteConfig, encoder: str | Path, out: Path) -> None:
        self.cfg, self.encoder, self.out = cfg, Path(encoder), out
        self.is_folder = self.encoder.is_dir()
        self.given = load_embeddings(self.encoder) if self.is_folder else None

    def encoder_path(self, method: str) -> Path | None:
        if not self.is_folder:
            return self.encoder
        path = (self.given.meta or {}).get("encoder_path") if self.given else None
        usable = path and method in ("random_init", "supervised") and Path(path).is_file()
        return Path(path) if usable else None

    def settings(self, task: TaskConfig) -> tuple[str, float | None]:
        """Layer and hop: a given embeddings folder's (so baselines match), else the task's."""
        if self.given is None:
            return task.layer, self.cfg.hop_seconds
        meta = self.given.meta
        hop = meta.get("hop_samples")
        rate = meta.get("sample_rate")
        return meta.get("layer", task.layer), (hop / rate if hop and rate else self.cfg.hop_seconds)

    def __call__(
        self, method: str, task: TaskConfig, labelled: Any
    ) -> tuple[EmbeddingSet, EmbeddingSet | None]:
        if method == ENCODER and self.given is not None:
            win = self.encoder / "windows"
            if task.windows and not win.is_dir():
                raise AudioclrError(
                    f"task {task.name!r} probes windows but {self.encoder} has no windows/",
                    hint="re-embed with --keep-windows, or drop windows from the task",
                )
            return self.given, load_embeddings(win) if task.windows else None
        if method == "mfcc":
            return self._mfcc(task, labelled), None
        path = self.encoder_path(method)
        if path is None:
            raise AudioclrError(
                f"method {method!r} needs an exported encoder", hint="pass --encoder ENC.pt"
            )
        from audioclr.evaluate.embed import embed_track_list
        from audioclr.ssl.export import load_encoder

        seed = self.cfg.random_init_seed if method != ENCODER else None
        loaded = load_encoder(path, random_init_seed=seed)
        layer, hop_seconds = self.settings(task)
        key = _slug(task.data or task.labels, task.windows)
        if method == "supervised":
            key = _slug(key, task.labels, self.cfg.supervised_epochs, seed, loaded.encoder_id)
        dest = self.out / "emb" / method / f"{layer}-{key}"
        if method == "supervised":
            done = self._cached(dest, key)
            if done is not None:
                return done, load_embeddings(dest / "windows") if task.windows else None
            loaded = self._train(loaded, labelled)
        emb = embed_track_list(
            loaded,
            task_tracks(task, labelled, loaded.sample_rate),
            dest,
            layer,
            hop_seconds,
            self.cfg.batch_size,
            task.windows,
            self.cfg.device,
            {"encoder_path": str(path.resolve()), "method": method, "train_key": key},
        )
        return emb, load_embeddings(dest / "windows") if task.windows else None

    @staticmethod
    def _cached(dest: Path, key: str) -> EmbeddingSet | None:
        """A finished supervised embedding folder made with the same training key."""
        try:
            emb = load_embeddings(dest)
        except AudioclrError:
            return None
        return emb if emb.meta.get("train_key") == key else None

    def _train(self, loaded: Any, labelled: Any) -> Any:
        from audioclr.evaluate.supervised import train_supervised

        train = [i for i, s in enumerate(labelled.splits) if s == "train"]
        files = tracks_of_files([labelled.paths[i] for i in train], loaded.sample_rate)
        trained, _ = train_supervised(
            loaded,
            [t.read() for t in files],
            labelled.targets()[train],
            bool(labelled.multilabel),
            len(labelled.classes),
            epochs=self.cfg.supervised_epochs,
            seed=self.cfg.random_init_seed,
            device=self.cfg.device,
        )
        return trained

    def _mfcc(self, task: TaskConfig, labelled: Any) -> EmbeddingSet:
        from audioclr.evaluate.baselines import mfcc_embed_track_list

        rate = int(self.given.meta.get("sample_rate", 22050)) if self.given else self._rate()
        dest = self.out / "emb" / "mfcc" / _slug(task.data or task.labels, rate)
        return mfcc_embed_track_list(
            task_tracks(task, labelled, rate), dest, rate, {"method": "mfcc"}
        )

    def _rate(self) -> int:
        from audioclr.ssl.export import load_encoder

        return int(load_encoder(self.encoder).sample_rate)
