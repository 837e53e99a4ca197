"""The typed config loader: YAML + dotted overrides, errors naming the key and its source."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from audioclr.config import load_config, require
from audioclr.errors import ConfigError


@dataclass
class Task:
    labels: str = ""
    fractions: list[float] = field(default_factory=lambda: [1.0])


@dataclass
class Suite:
    tasks: list[Task] = field(default_factory=list)
    epochs: int = 10

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "epochs", self.epochs, "must be >= 1")


def _yaml(tmp_path, text: str):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_overrides_reach_list_items_and_parse_values(tmp_path):
    path = _yaml(tmp_path, "tasks:\n  - {labels: a.csv}\n  - {labels: b.csv}\n")
    cfg = load_config(
        Suite, path, ["tasks.1.labels=z.csv", "tasks.0.fractions=[0.1,1e-2]", "epochs=3"]
    )
    assert [t.labels for t in cfg.tasks] == ["a.csv", "z.csv"]
    assert cfg.tasks[0].fractions == [0.1, 0.01]
    assert cfg.epochs == 3


def test_unknown_key_names_key_and_source(tmp_path):
    path = _yaml(tmp_path, "epochs: 2\nepoch_count: 3\n")
    with pytest.raises(
        ConfigError, match=r"unknown config key 'epoch_count' \(from .*suite.yaml\)"
    ):
        load_config(Suite, path)
    with pytest.raises(
        ConfigError, match=r"unknown config key 'nope' \(from command-line override"
    ):
        load_config(Suite, _yaml(tmp_path, "epochs: 2\n"), ["nope=1"])


def test_bad_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match="'epochs' must be >= 1, got 0"):
        load_config(Suite, None, ["epochs=0"])
    with pytest.raises(ConfigError, match="config key 'epochs'.*could not be converted"):
        load_config(Suite, None, ["epochs=many"])
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_config(Suite, None, ["epochs"])
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(Suite, _yaml(tmp_path, "- 1\n- 2\n"))
