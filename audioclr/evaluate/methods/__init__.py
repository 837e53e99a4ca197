"""Evaluation methods: one module per representation, one registry ``METHODS`` (name -> class).

Every method embeds a task's tracks (``TrackSet``) into one ``Embedded`` per draw, cached under
``OUT/emb/<name>/<cache_key>/``, and says how reports name it and whether it is a baseline,
needs an exported encoder or trains on labels. The probe suite, the benchmark and retrieval
evaluation all go through this registry; none of them knows a method by its name.

Adding a method: one module with a ``Method`` subclass, one line in ``METHODS``.

Example:
    >>> method = get_method("random_init")
    >>> method.display, method.baseline, method.needs_encoder
    ('random-init', True, True)
    >>> display_name("encoder"), baselines()
    ('SSL', ['random_init', 'mfcc', 'supervised'])
"""

from __future__ import annotations

from collections.abc import Sequence

from audioclr.errors import ConfigError
from audioclr.evaluate.methods.base import (
    Embedded,
    Method,
    MethodSettings,
    Source,
    TrackSet,
)
from audioclr.evaluate.methods.encoder import Encoder
from audioclr.evaluate.methods.mfcc import Mfcc
from audioclr.evaluate.methods.random_init import RandomInit
from audioclr.evaluate.methods.supervised import Supervised

METHODS: dict[str, type[Method]] = {
    Encoder.name: Encoder,
    RandomInit.name: RandomInit,
    Mfcc.name: Mfcc,
    Supervised.name: Supervised,
}
ENCODER = Encoder.name  # the representation under test; every other method is a baseline
DEFAULT_METHODS = [Encoder.name, RandomInit.name, Mfcc.name]  # supervised is opt-in: it trains

__all__ = [
    "DEFAULT_METHODS",
    "ENCODER",
    "METHODS",
    "Embedded",
    "Method",
    "MethodSettings",
    "Source",
    "TrackSet",
    "baselines",
    "check_methods",
    "display_name",
    "get_method",
    "is_baseline",
]


def get_method(name: str) -> Method:
    """The method registered as ``name``; ``ConfigError`` listing the choices otherwise."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}", hint=f"choose from {list(METHODS)}")
    return METHODS[name]()


def check_methods(names: Sequence[str], key: str = "methods") -> None:
    """``ConfigError`` naming ``key`` unless ``names`` is a non-empty list of known methods."""
    unknown = [n for n in names if n not in METHODS]
    if not names or unknown:
        raise ConfigError(
            f"config key '{key}' must list methods from {list(METHODS)}, got {list(names)!r}",
            hint=f"fix '{key}' in the YAML or pass {key}=[{','.join(DEFAULT_METHODS)}]",
        )


def display_name(name: str) -> str:
    """The name reports show for a method ("SSL", "random-init", "MFCC", "supervised")."""
    return METHODS[name].display if name in METHODS else name


def baselines() -> list[str]:
    """Every registered method the encoder must beat."""
    return [name for name, cls in METHODS.items() if cls.baseline]


def is_baseline(name: str) -> bool:
    """Whether reports compare the encoder against ``name`` (every registered method but it)."""
    return name in METHODS and METHODS[name].baseline
