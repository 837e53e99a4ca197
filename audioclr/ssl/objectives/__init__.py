"""Objective registry: ``OBJECTIVES`` (a plain dict, name -> class) and ``build_objective``.

The config key ``method`` picks an entry; its settings are the YAML section of the same name.

- ``simclr``: projection + NT-Xent, negatives gathered from every rank.
- ``cpc``: frame latents -> GRU context -> InfoNCE on future latents.
- ``byol``: prediction of a momentum teacher's projection (teacher updated after each step).
- ``vicreg``: invariance + variance + covariance on projections.
- ``barlowtwins``: cross-correlation of the two views' projections toward the identity.
- ``looc``: an invariant space plus one augmentation-sensitive space per group (LooC).

Example:
    >>> obj = build_objective("byol", encoder, BYOLConfig())
    >>> sorted(OBJECTIVES)
    ['barlowtwins', 'byol', 'cpc', 'looc', 'simclr', 'vicreg']
"""

from __future__ import annotations

from typing import Any

from audioclr.errors import ConfigError
from audioclr.ssl.base import Encoder
from audioclr.ssl.objectives.barlowtwins import BarlowTwins, BarlowTwinsConfig
from audioclr.ssl.objectives.base import Objective
from audioclr.ssl.objectives.byol import BYOL, BYOLConfig
from audioclr.ssl.objectives.cpc import CPC, CPCConfig
from audioclr.ssl.objectives.looc import LooC, LooCConfig
from audioclr.ssl.objectives.simclr import SimCLR, SimCLRConfig
from audioclr.ssl.objectives.vicreg import VICReg, VICRegConfig

OBJECTIVES: dict[str, type[Objective]] = {
    "simclr": SimCLR,
    "cpc": CPC,
    "byol": BYOL,
    "vicreg": VICReg,
    "barlowtwins": BarlowTwins,
    "looc": LooC,
}


def build_objective(name: str, encoder: Encoder, cfg: Any) -> Objective:
    """The registered objective ``name`` on ``encoder`` with its config section ``cfg``.

    Raises ``ConfigError`` naming the key ``method`` and listing the choices for an unknown name.
    """
    if name not in OBJECTIVES:
        raise ConfigError(
            f"config key 'method' is {name!r}, an unknown objective",
            hint=f"choose one of {sorted(OBJECTIVES)}",
        )
    objective = OBJECTIVES[name]
    if not isinstance(cfg, objective.config):
        raise TypeError(
            f"objective {name!r} takes a {objective.config.__name__}, got {type(cfg).__name__}"
        )
    return objective(encoder, cfg)


__all__ = [
    "OBJECTIVES",
    "BYOL",
    "BYOLConfig",
    "BarlowTwins",
    "BarlowTwinsConfig",
    "CPC",
    "CPCConfig",
    "LooC",
    "LooCConfig",
    "Objective",
    "SimCLR",
    "SimCLRConfig",
    "VICReg",
    "VICRegConfig",
    "build_objective",
]
