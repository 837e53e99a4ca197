"""Pools per recipe (``ablation.pools``, the cross-domain benchmark) on the tiny synthetic suite:
each pool folder prepared once, a recipe's caches in its pretraining, the matrix in the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import write_audio
from test_pipelines_benchmark import SR, make_data, tiny_suite

from audioclr.data.cache import ClipCache
from audioclr.errors import AudioReadError, ConfigError
from audioclr.pipelines.ablation import run_ablation
from audioclr.pipelines.bench_config import (
    AblationConfig,
    check_datasets,
    load_benchmark_config,
    pool_slug,
)
from audioclr.ssl.export import load_encoder

SHIPPED = Path(__file__).resolve().parents[1] / "benchmarks" / "cross_domain.yaml"
RECIPES = {"noise": [], "both": []}  # "noise" on pool2 only, "both" on pool + pool2
POOLS = {"noise": ["pool2"], "both": ["pool", "pool2"]}


def cross_suite(tmp: Path) -> Path:
    """The benchmark's tiny suite, a second pool (4 noise tracks) and recipes on their own pools."""
    data = make_data(tmp / "data", np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for i in range(4):
        write_audio(data / "pool2" / f"n{i}.wav", rng.normal(0, 0.2, 2 * SR).astype("f4"), SR)
    suite = yaml.safe_load(tiny_suite(data, tmp).read_text())
    suite["probe"]["tasks"] = suite["probe"]["tasks"][:1]  # tones only: fast
    suite.update(
        random_init_draws=1, ablation={"recipes": RECIPES, "layers": ["all"], "pools": POOLS}
    )
    path = tmp / "cross.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))  # recipes in order
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[str]]:
    tmp = tmp_path_factory.mktemp("cross")
    cfg = load_benchmark_config(cross_suite(tmp))
    assert isinstance(cfg, AblationConfig)
    logs: list[str] = []
    report = run_ablation(cfg, tmp / "out", "test", logs.append)
    return tmp, report, logs


def test_each_pool_folder_is_prepared_once_and_reaches_its_recipes(finished: tuple) -> None:
    tmp, report, logs = finished
    out = tmp / "out"
    assert sum(line.startswith("[prepare") and line.endswith("...") for line in logs) == 2
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert {s for s in stages if s.startswith("prepare")} == {"prepare", "prepare/pool2"}
    pool2 = out / "pools" / "pool2" / "cache"
    assert len(ClipCache(pool2)) == 4 and len(ClipCache(out / "cache")) == 6
    stored = {
        r: yaml.safe_load((out / r / "run" / "config.yaml").read_text())["data"]["cache"]
        for r in RECIPES
    }
    assert stored == {"noise": str(pool2), "both": [str(out / "cache"), str(pool2)]}
    pools = {r: report["recipes"][r]["pool"] for r in RECIPES}
    assert pools["noise"]["folders"] == ["pool2"] and pools["noise"]["tracks"] == 4
    assert pools["both"]["folders"] == ["pool", "pool2"] and pools["both"]["tracks"] == 10
    assert pools["both"]["hours"] == pytest.approx(10 * 2.0 / 3600, rel=1e-3)
    ids = {report["recipes"][r]["pretrain"]["encoder_id"] for r in RECIPES}
    assert len(ids) == 2
    data = tmp / "data"
    for recipe, folders in POOLS.items():  # the leak check knows every file it pretrained on
        trained_on = load_encoder(out / recipe / "encoder.pt").trained_on
        files = {str(p.resolve()) for f in folders for p in (data / f).glob("*.wav")}
        assert {str(Path(s).resolve()) for s in trained_on["sources"]} == files


def test_matrix_cells_are_the_probe_reports_numbers(finished: tuple) -> None:
    tmp, report, _ = finished
    m = report["matrix"]
    assert m["fractions"] == [1.0] and m["rows"] == ["noise/all", "both/all"]
    assert m["baselines"] == ["random-init/all", "MFCC/all"]
    for recipe in RECIPES:
        probe = json.loads((tmp / "out" / recipe / "probe" / "all" / "report.json").read_text())
        t = probe["tasks"]["tones"]
        got = m["cells"]["1.0"][f"{recipe}/all"]["tones"]
        assert got["mean"] == t["results"]["encoder"]["linear"]["1.0"]["accuracy"]["mean"]
        assert got["verdict"] == t["verdict"]["linear"]["1.0"]["verdict"]
        if recipe == "noise":  # baselines come from the first recipe's run
            mfcc = m["cells"]["1.0"]["MFCC/all"]["tones"]
            assert mfcc["mean"] == t["results"]["mfcc"]["linear"]["1.0"]["accuracy"]["mean"]
    md = (tmp / "out" / "ablation.md").read_text()
    section = md.split("## Matrix")[1].split("## Tables")[0]
    assert "### 100 % of the labels" in section
    assert "| recipe/layer | tones (accuracy, linear) |" in section
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0] for r in rows] == [
        "| noise/all",
        "| both/all",
        "| random-init/all",
        "| MFCC/all",
    ]
    best = max(m["cells"]["1.0"][r]["tones"]["mean"] for r in m["rows"])
    assert f"**{best:.3f}" in section
    assert "`pool` + `pool2` (10 tracks" in md


def test_pool_keys_are_checked_and_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ablation\.pools\.nope"):
        load_benchmark_config(SHIPPED, ["ablation.pools.nope=[speech_pool/audio]"])
    with pytest.raises(ConfigError, match=r"ablation\.pools\.speech"):
        load_benchmark_config(SHIPPED, ["ablation.pools.speech=[]"])
    with pytest.raises(ConfigError, match=r"ablation\.pools\.both"):
        load_benchmark_config(SHIPPED, ["ablation.pools.both=[a/b, a/b/]"])
    with pytest.raises(ConfigError, match=r"ablation\.pools'"):
        load_benchmark_config(SHIPPED, ["ablation.pools.speech=[a-b]", "ablation.pools.both=[a/b]"])
    with pytest.raises(ConfigError, match=r"ablation\.recipes\.pools"):
        load_benchmark_config(SHIPPED, ["ablation.recipes.pools=[]"])
    cfg = load_benchmark_config(
        SHIPPED, [f"data_root={tmp_path}", "ablation.pools.speech=[nowhere/audio]"]
    )
    with pytest.raises(AudioReadError, match=r"ablation\.pools\.speech\[0\] \(.*nowhere/audio\)"):
        check_datasets(cfg)


def test_pool_slug_is_a_folder_name() -> None:
    assert pool_slug("speech_pool/audio") == "speech_pool-audio"
    assert pool_slug("/abs/music pool/") == "abs-music-pool"
    assert pool_slug("//") == ""


def test_shipped_cross_domain_config() -> None:
    cfg = load_benchmark_config(SHIPPED)
    ablation = load_benchmark_config(SHIPPED.with_name("ablation.yaml"))
    suite = load_benchmark_config(SHIPPED.with_name("suite.yaml"))
    assert isinstance(cfg, AblationConfig) and isinstance(ablation, AblationConfig)
    assert cfg.pretrain == ablation.pretrain  # the same small budget as the ablation
    assert cfg.probe == suite.probe and cfg.retrieval == suite.retrieval
    assert cfg.ablation.recipes == {"music": [], "speech": [], "both": []}
    assert cfg.pool == suite.pool and "music" not in cfg.ablation.pools
    assert cfg.ablation.pools == {
        "speech": ["speech_pool/audio"],
        "both": [suite.pool, "speech_pool/audio"],
    }


def test_suite_pretrains_on_pool_and_extra_pools(tmp_path: Path) -> None:
    """``extra_pools``: each folder its own cache (stage prepare/<slug>), pretraining reads them
    as one (the encoder's trained-on list holds every file of both), the report sums them."""
    from audioclr.pipelines.bench_report import to_markdown
    from audioclr.pipelines.benchmark import run_benchmark

    path = cross_suite(tmp_path)
    suite = yaml.safe_load(path.read_text())
    del suite["ablation"]
    suite.update(extra_pools=["pool2"])
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    cfg = load_benchmark_config(path)
    assert cfg.pools == ["pool", "pool2"]
    out = tmp_path / "out"
    report = run_benchmark(cfg, out, "test", lambda _: None)
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert {s for s in stages if s.startswith("prepare")} == {"prepare", "prepare/pool2"}
    stored = yaml.safe_load((out / "run" / "config.yaml").read_text())["data"]["cache"]
    assert stored == [str(out / "cache"), str(out / "pools" / "pool2" / "cache")]
    data = tmp_path / "data"
    files = {str(p.resolve()) for f in cfg.pools for p in (data / f).glob("*.wav")}
    trained_on = load_encoder(out / "encoder.pt").trained_on["sources"]
    assert {str(Path(s).resolve()) for s in trained_on} == files and len(files) == 10
    p = report["pretrain"]
    assert p["pool_folders"] == ["pool", "pool2"] and p["pool_tracks"] == 10
    assert p["pool_hours"] == pytest.approx(10 * 2.0 / 3600, rel=1e-3)
    assert "on 10 tracks (`pool` + `pool2`, 0.0 h)" in to_markdown(report)


def test_extra_pools_are_checked_and_named(tmp_path: Path) -> None:
    suite = SHIPPED.with_name("suite.yaml")
    with pytest.raises(ConfigError, match=r"extra_pools"):
        load_benchmark_config(suite, ["extra_pools=[music_pool/audio/pretrain]"])
    with pytest.raises(ConfigError, match=r"extra_pools"):
        load_benchmark_config(suite, ["extra_pools=[a/b, a/b]"])
    cfg = load_benchmark_config(suite, [f"data_root={tmp_path}", "extra_pools=[nowhere/audio]"])
    with pytest.raises(AudioReadError, match=r"extra_pools\[0\] \(.*nowhere/audio\)"):
        check_datasets(cfg)


def test_shipped_objectives_config_compares_objectives_on_one_pool() -> None:
    """benchmarks/objectives.yaml: the cross-domain budget and recipes, plus VICReg and Barlow
    Twins on the music+speech pool; only the method (and its projection sizes) differs."""
    cfg = load_benchmark_config(SHIPPED.with_name("objectives.yaml"))
    cross = load_benchmark_config(SHIPPED)
    assert isinstance(cfg, AblationConfig) and isinstance(cross, AblationConfig)
    assert cfg.pretrain == cross.pretrain and cfg.probe == cross.probe
    both = cross.ablation.pools["both"]
    for method in ("vicreg", "barlowtwins"):
        name = f"both_{method}"
        assert cfg.ablation.pools[name] == both
        assert cfg.ablation.recipes[name][0] == f"method={method}"
    assert {k: v for k, v in cfg.ablation.recipes.items() if not k.startswith("both_")} == (
        cross.ablation.recipes
    )


def test_shipped_views_config_varies_only_the_views_on_one_pool() -> None:
    """benchmarks/views.yaml: the cross-domain budget on music + speech (``extra_pools``); the
    recipes differ from "both" only in a seed or augment keys."""
    cfg = load_benchmark_config(SHIPPED.with_name("views.yaml"))
    cross = load_benchmark_config(SHIPPED)
    assert isinstance(cfg, AblationConfig) and isinstance(cross, AblationConfig)
    assert cfg.pretrain == cross.pretrain and cfg.probe == cross.probe
    assert cfg.pools == cross.ablation.pools["both"] and not cfg.ablation.pools
    assert cfg.ablation.recipes["both"] == []
    for name, overrides in cfg.ablation.recipes.items():
        assert all(o.startswith(("augment.", "trainer.seed=")) for o in overrides), name
