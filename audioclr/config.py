"""Typed configs: dataclasses loaded from YAML with dotted overrides (OmegaConf structured configs).

Unknown keys and wrongly typed values are errors naming the key. Value ranges are checked in
each dataclass's ``__post_init__`` with :func:`require` (or :func:`require_positive`, ...), which
raises ``ConfigError`` naming the key.

Example:
    >>> @dataclass
    ... class Train:
    ...     lr: float = 1e-3
    ...     def __post_init__(self) -> None:
    ...         require(self.lr > 0, "lr", self.lr, "must be > 0")
    >>> cfg = load_config(Train, None, ["lr=0.01"])
    >>> cfg.lr
    0.01
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from audioclr.atomic import atomic_write_text
from audioclr.errors import ConfigError

T = TypeVar("T")

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"


def require(ok: bool, key: str, value: Any, what: str) -> None:
    """Raise ``ConfigError`` naming ``key`` and ``value`` unless ``ok``.

    Example:
        >>> require(48 > 0, "batch_size", 48, "must be > 0")
    """
    if not ok:
        raise ConfigError(
            f"config key '{key}' {what}, got {value!r}",
            hint=f"fix '{key}' in the YAML or pass {key}=...",
        )


def require_positive(section: str, cfg: Any, *keys: str) -> None:
    """:func:`require` that each of ``keys`` of ``cfg`` is > 0, naming it ``<section>.<key>``.

    Example:
        >>> require_positive("simclr", cfg, "projection_hidden", "projection_dim")
    """
    for key in keys:
        value = getattr(cfg, key)
        require(value > 0, f"{section}.{key}", value, "must be > 0")


def require_non_negative(section: str, cfg: Any, *keys: str) -> None:
    """:func:`require` that each of ``keys`` of ``cfg`` is >= 0, naming it ``<section>.<key>``.

    Example:
        >>> require_non_negative("vicreg", cfg, "invariance_weight", "variance_weight")
    """
    for key in keys:
        value = getattr(cfg, key)
        require(value >= 0, f"{section}.{key}", value, "must be >= 0")


def resolve_config_path(name_or_path: str | Path, kind: str) -> Path:
    """A config given as a path, or as a name under ``configs/<kind>/`` (``simclr_melcnn``).

    Example:
        >>> resolve_config_path("simclr_melcnn", "pretrain").name
        'simclr_melcnn.yaml'
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    named = CONFIG_ROOT / kind / f"{Path(name_or_path).stem}.yaml"
    if named.is_file():
        return named
    choices = sorted(p.stem for p in (CONFIG_ROOT / kind).glob("*.yaml"))
    raise ConfigError(
        f"config {str(name_or_path)!r} not found", hint=f"give a YAML path or one of {choices}"
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys, got {type(data).__name__}")
    return data


def _key_of(exc: OmegaConfBaseException) -> str:
    return str(getattr(exc, "full_key", None) or getattr(exc, "key", None) or "?")


def _parse_override(item: str) -> tuple[str, Any]:
    """``key.sub=value`` -> (``key.sub``, value parsed as OmegaConf parses a dotlist value)."""
    if "=" not in item or item.startswith("="):
        raise ConfigError(
            f"override {item!r} is not of the form key=value", hint="e.g. train.max_steps=200"
        )
    key, raw = item.split("=", 1)
    return key.strip(), OmegaConf.to_container(OmegaConf.from_dotlist([f"v={raw}"]))["v"]  # type: ignore[index]


def _raise_named(exc: OmegaConfBaseException, schema: type, source: str) -> None:
    """Re-raise an OmegaConf error as ``ConfigError`` naming the key and where it came from."""
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)):
        raise ConfigError(
            f"unknown config key '{_key_of(exc)}' (from {source})",
            hint=f"valid top-level keys: {[f.name for f in dataclasses.fields(schema)]}",
        ) from exc
    cause = exc.__cause__ if isinstance(exc.__cause__, ConfigError) else None
    if cause is not None:
        raise cause from exc
    msg = str(exc).splitlines()[0]
    raise ConfigError(f"bad value for config key '{_key_of(exc)}' (from {source}): {msg}") from exc


def load_config(
    schema: type[T],
    path: str | Path | None,
    overrides: Sequence[str] = (),
    base: dict[str, Any] | None = None,
) -> T:
    """Build ``schema`` from defaults, the YAML at ``path``, ``base`` (values a command sets from
    its positional arguments), then ``key.sub=value`` overrides.

    A schema may name presets: ``PRESETS = {"augment_preset": ("augment", "augment")}`` means
    the value of key ``augment_preset`` (from overrides, else ``base``, else the YAML) names a
    YAML under ``configs/augment/`` that fills section ``augment`` first; the YAML's and the
    overrides' own ``augment.*`` keys still win. Overrides may index lists (``tasks.0.labels=x``).
    Raises ``ConfigError`` naming the key and
    its source (the YAML file or the command line) for unknown keys, wrong types and failed range
    checks.
    """
    parsed = [_parse_override(item) for item in overrides]
    merged = OmegaConf.structured(schema)
    data = _read_yaml(Path(path)) if path is not None else {}
    for key, (section, kind) in getattr(schema, "PRESETS", {}).items():
        chosen = dict(parsed).get(key, (base or {}).get(key, data.get(key)))
        if chosen:
            preset = resolve_config_path(str(chosen), kind)
            try:
                merged = OmegaConf.merge(merged, OmegaConf.create({section: _read_yaml(preset)}))
            except OmegaConfBaseException as exc:
                _raise_named(exc, schema, f"preset {preset} ({key}={chosen})")
    if path is not None:
        try:
            merged = OmegaConf.merge(merged, OmegaConf.create(data))
        except OmegaConfBaseException as exc:
            _raise_named(exc, schema, str(path))
    if base:
        try:
            merged = OmegaConf.merge(merged, OmegaConf.create(base))
        except OmegaConfBaseException as exc:
            _raise_named(exc, schema, "the command's arguments")
    for key, value in parsed:
        try:
            OmegaConf.update(merged, key, value, merge=True)
        except OmegaConfBaseException as exc:
            _raise_named(exc, schema, f"command-line override {key}=...")
    try:
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        _raise_named(exc, schema, str(path) if path is not None else "overrides")
        raise  # unreachable: _raise_named always raises


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (for checkpoints, JSON and exported encoders)."""
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
