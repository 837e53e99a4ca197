# ruff: noqa: E741  (D, I: the FAISS names for scores and ids)
"""Similar-track queries against a :class:`TrackIndex`: by track id, by audio file, or a list.

A track-id query uses the stored vector and never returns the track itself. A file query is
embedded with the encoder the index was built with (its path from the side table, or
``encoder=``); an encoder whose ``encoder_id`` differs from the index's is an error. A missing
query file and an unknown track id are distinct errors. A silent query file (peak below -80 dBFS,
the level ``prepare`` rejects as silent) is answered, but its result carries a ``warning`` that
the neighbours are meaningless (the encoder's output for silence is a constant vector).

Example:
    >>> tix = TrackIndex.load("my_index/")
    >>> [r.track_id for r in Querier(tix).query("piano/a.wav", k=3).results]
    ['piano/b.wav', 'piano/c.wav', 'guitar/d.wav']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audioclr.errors import RetrievalError, SampleRateMismatch
from audioclr.search.index import TrackIndex

if TYPE_CHECKING:
    from audioclr.search.shards import ShardedIndex
    from audioclr.ssl.export import LoadedEncoder

SILENT_PEAK = 1e-4  # -80 dBFS, the level below which prepare rejects a file as all silent


@dataclass
class Hit:
    """One retrieved track."""

    rank: int
    track_id: str
    source: str
    score: float  # cosine similarity


@dataclass
class QueryResult:
    """The ranked hits for one query (a track id or an audio path)."""

    query: str
    kind: str  # "track" | "file"
    results: list[Hit] = field(default_factory=list)
    warning: str | None = None  # e.g. a silent query file

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


class Querier:
    """Answers queries on ``tix`` (one index, or shards behind a ``ShardedIndex``); loads the
    encoder once, on the first file query."""

    def __init__(
        self,
        tix: TrackIndex | ShardedIndex,
        encoder: str | Path | None = None,
        device: str = "cpu",
    ) -> None:
        self.tix = tix
        self.encoder_path = encoder
        self.device = device
        self._loaded: LoadedEncoder | None = None

    def _encoder(self) -> LoadedEncoder:
        if self._loaded is None:
            from audioclr.ssl.export import load_encoder

            table = self.tix.table
            path = self.encoder_path or table.encoder_path
            if path is None:
                raise RetrievalError(
                    "the index does not record which encoder made its vectors",
                    hint="pass --encoder ENCODER.pt (the one used for audioclr embed)",
                )
            loaded = load_encoder(path, map_location=self.device)
            if table.encoder_id is not None and loaded.encoder_id != table.encoder_id:
                raise RetrievalError(
                    f"encoder {path} has encoder_id {loaded.encoder_id}, but the index was "
                    f"built from encoder_id {table.encoder_id}",
                    hint="query with the encoder the index was built with, or rebuild the index",
                )
            if table.sample_rate is not None and loaded.sample_rate != table.sample_rate:
                raise SampleRateMismatch(
                    f"encoder {path} runs at {loaded.sample_rate} Hz but the index vectors were "
                    f"made at {table.sample_rate} Hz",
                    hint="query with the encoder the index was built with",
                )
            self._loaded = loaded
        return self._loaded

    def embed_file(self, path: str | Path) -> np.ndarray:
        """Embed one audio file as the index's vectors were made, ``(dim,)``."""
        return self._embed_file(path)[0]

    def _embed_file(self, path: str | Path) -> tuple[np.ndarray, str | None]:
        """The file's vector and a warning when it is silent."""
        from audioclr.data.decode import decode_audio
        from audioclr.evaluate.embed import embed_waveform

        loaded = self._encoder()
        table = self.tix.table
        x = decode_audio(path, loaded.sample_rate)
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        warning = (
            f"query file {path} is silent (peak {peak:.1e}, below -80 dBFS): "
            "its neighbours are meaningless"
            if not peak >= SILENT_PEAK
            else None
        )
        return embed_waveform(
            loaded,
            x,
            layer=table.layer or "last",
            hop_samples=table.hop_samples,
            device=self.device,
        ), warning

    def query(self, query: str, k: int = 10, kind: str = "auto") -> QueryResult:
        """``query`` is a track id of the index, else a path to an audio file (``kind``:
        ``"auto"``, or ``"track"`` / ``"file"`` to accept only that)."""
        return self.query_many([query], k, kind)[0]

    def query_many(self, queries: list[str], k: int = 10, kind: str = "auto") -> list[QueryResult]:
        """Batch of queries (track ids or audio paths; ``kind`` as in :meth:`query`)."""
        if not queries:
            raise RetrievalError(
                "no queries given", hint="give --track, --file or a non-empty --list"
            )
        vectors, exclude, kinds, warnings = [], [], [], []
        for q in queries:
            if kind != "file" and self.tix.table.has(q):
                vectors.append(self.tix.vector_of(q))
                exclude.append(self.tix.table.id_of(q))
                kinds.append("track")
                warnings.append(None)
            elif kind != "track" and Path(q).is_file():
                vector, warning = self._embed_file(q)
                vectors.append(vector)
                exclude.append(None)
                kinds.append("file")
                warnings.append(warning)
            else:
                raise _not_found(q, kind, len(self.tix.table))
        D, I = self.tix.search(np.stack(vectors).astype(np.float32), k, exclude)
        return [
            QueryResult(q, kind, self._hits(d, i), w)
            for q, kind, d, i, w in zip(queries, kinds, D, I, warnings, strict=True)
        ]

    def _hits(self, d: np.ndarray, i: np.ndarray) -> list[Hit]:
        table = self.tix.table
        return [
            Hit(r + 1, table.track_of(j), table.source_of(j), float(s))
            for r, (s, j) in enumerate(zip(d, i, strict=True))
            if j >= 0
        ]


def _not_found(query: str, kind: str, tracks: int) -> RetrievalError:
    """The error for a query that is no track id of the index and no existing file."""
    if kind == "file":
        return RetrievalError(f"query file {query} not found", hint="check the path")
    if kind == "track":
        return RetrievalError(
            f"unknown track id {query!r} (index has {tracks} tracks)",
            hint="list the ids with: audioclr index info INDEX --ids",
        )
    return RetrievalError(
        f"{query!r} is neither a track id of the index nor an existing audio file",
        hint="list the ids with: audioclr index info INDEX --ids, or check the path",
    )


def read_query_list(path: str | Path) -> list[str]:
    """One track id or audio path per line; blank lines and ``#`` comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise RetrievalError(
            f"query list {path} not found", hint="one track id or audio path per line"
        )
    lines = [s.strip() for s in path.read_text().splitlines()]
    return [s for s in lines if s and not s.startswith("#")]


def format_table(results: list[QueryResult]) -> str:
    """Human-readable ranked lists, one block per query."""
    out = []
    for res in results:
        out.append(f"query ({res.kind}): {res.query}")
        out += [f"  {h.rank:3d}  {h.score:7.4f}  {h.track_id}" for h in res.results]
    return "\n".join(out)
