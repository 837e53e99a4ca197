"""The small exception hierarchy of audioclr.

Every error a user can cause is one of these. The CLI catches ``AudioclrError`` once and
prints ``error: <message>`` plus ``hint: <hint>``; tracebacks only with ``--debug``.

Example:
    >>> raise ConfigError("pretrain.batch_size must be > 0, got -1", hint="set batch_size=48")
"""

from __future__ import annotations


class AudioclrError(Exception):
    """Base class: a message naming the file/key and what went wrong, plus an optional hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(AudioclrError):
    """A config file, key or value is wrong (the message names the key)."""


class AudioReadError(AudioclrError):
    """An audio file cannot be read, or is empty, silent or too short (names the file)."""


class CacheError(AudioclrError):
    """A clip cache is missing, damaged, or of another format version."""


class LabelError(AudioclrError):
    """A labelled-set description is malformed (names the file and row)."""


class SampleRateMismatch(AudioclrError):
    """Audio or embeddings at one rate met a component expecting another (never resampled
    silently)."""


class CheckpointError(AudioclrError):
    """A checkpoint or exported encoder cannot be loaded (names the file and why)."""


class RetrievalError(AudioclrError):
    """An index operation failed: dimension mismatch, unknown id, empty index, encoder mismatch."""
