"""Evaluation methods: one module per representation, one registry ``METHODS`` (name -> class).

Every method embeds a task's tracks (``TrackSet``) into one ``Embedded`` per draw, cached under
``OUT/emb/<name>/<cache_key>/``, and says how reports name it and whether it is a baseline,
needs an exported encoder or trains on labels. The probe suite, the benchmark and retrieval
evaluation all go through this registry; none of them knows a method by its name.

Adding a method: one module with a ``Method`` subclass, one line in ``METHODS``. A method that
takes an argument (``argument`` set, e.g. ``hear``) is written ``name:<argument>`` in configs
(``hear:hearbaseline.naive``) and built as ``cls(argument)``.

Example:
    >>> method = get_method("random_init")
    >>> method.display, method.baseline, method.needs_encoder
    ('random-init', True, True)
    >>> display_name("encoder"), baselines()
    ('SSL', ['random_init', 'mfcc', 'supervised'])
    >>> display_name("hear:hearbaseline.naive"), is_baseline("hear:hearbaseline.naive")
    ('HEAR hearbaseline.naive', True)
"""

from __future__ import annotations

from collections.abc import Sequence

from audioclr.errors import ConfigError
from audioclr.evaluate.methods.base import (
    ENCODER_BN,
    Embedded,
    Method,
    MethodSettings,
    Source,
    TrackSet,
    check_encoder_bn,
)
from audioclr.evaluate.methods.encoder import Encoder
from audioclr.evaluate.methods.hear import Hear
from audioclr.evaluate.methods.mfcc import Mfcc
from audioclr.evaluate.methods.random_init import RandomInit
from audioclr.evaluate.methods.supervised import Supervised

METHODS: dict[str, type[Method]] = {
    Encoder.name: Encoder,
    RandomInit.name: RandomInit,
    Mfcc.name: Mfcc,
    Supervised.name: Supervised,
    Hear.name: Hear,  # hear:<module>[:<weights>], any HEAR 2021 module
}
ENCODER = Encoder.name  # the representation under test; every other method is a baseline
DEFAULT_METHODS = [Encoder.name, RandomInit.name, Mfcc.name]  # supervised is opt-in: it trains

__all__ = [
    "DEFAULT_METHODS",
    "ENCODER",
    "ENCODER_BN",
    "METHODS",
    "Embedded",
    "Method",
    "MethodSettings",
    "Source",
    "TrackSet",
    "baselines",
    "check_encoder_bn",
    "check_methods",
    "choices",
    "display_name",
    "get_method",
    "is_baseline",
    "method_class",
]


def choices() -> list[str]:
    """How configs may name each method (``hear:<module>[:<weights>]`` for one with an argument)."""
    return [n if c.argument is None else f"{n}:{c.argument}" for n, c in METHODS.items()]


def method_class(name: str) -> type[Method] | None:
    """The class a config name stands for (``"hear:x"`` -> ``Hear``), None if unknown."""
    base, sep, _ = name.partition(":")
    cls = METHODS.get(base)
    return cls if cls is not None and bool(sep) == (cls.argument is not None) else None


def get_method(name: str) -> Method:
    """The method a config names (``"mfcc"``, ``"hear:pkg.mod"``); ``ConfigError`` listing the
    choices when unknown, or the method's own when its argument is wrong."""
    cls = method_class(name)
    if cls is None:
        raise ConfigError(f"unknown method {name!r}", hint=f"choose from {choices()}")
    return cls(name.partition(":")[2]) if cls.argument is not None else cls()  # type: ignore[call-arg]


def check_methods(names: Sequence[str], key: str = "methods") -> None:
    """``ConfigError`` naming ``key`` unless ``names`` is a non-empty list of known methods that
    can run here (a HEAR module must be importable)."""
    unknown = [n for n in names if method_class(n) is None]
    if not names or unknown:
        raise ConfigError(
            f"config key '{key}' must list methods from {choices()}, got {list(names)!r}",
            hint=f"fix '{key}' in the YAML or pass {key}=[{','.join(DEFAULT_METHODS)}]",
        )
    for n in names:
        get_method(n).check()


def display_name(name: str) -> str:
    """The name reports show for a method ("SSL", "random-init", "MFCC", "HEAR pkg.mod")."""
    try:
        return get_method(name).display
    except ConfigError:
        return name


def baselines() -> list[str]:
    """Every registered method the encoder must beat (those taking an argument aside)."""
    return [name for name, cls in METHODS.items() if cls.baseline and cls.argument is None]


def is_baseline(name: str) -> bool:
    """Whether reports compare the encoder against ``name`` (every method but the encoder)."""
    cls = method_class(name)
    return cls is not None and cls.baseline
