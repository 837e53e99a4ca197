"""The ablation runner on the tiny synthetic suite: two recipes x two layers, shared baselines."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from test_pipelines_benchmark import make_data, tiny_suite

from audioclr.cli import main
from audioclr.errors import ConfigError
from audioclr.pipelines.ablation import run_ablation
from audioclr.pipelines.bench_config import (
    AblationConfig,
    BenchmarkConfig,
    load_benchmark_config,
)

SHIPPED = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation.yaml"
RECIPES = {"base": [], "warm": ["simclr.temperature=0.2", "optim.warmup_steps=2"]}
LAYERS = ["all", "last"]
COLUMNS = [f"{r}/{layer}" for r in RECIPES for layer in LAYERS]
DRAWS = 2


def ablation_suite(tmp: Path) -> Path:
    """The benchmark's tiny suite plus an ``ablation`` section (2 random-init draws)."""
    suite = yaml.safe_load(
        tiny_suite(make_data(tmp / "data", np.random.default_rng(0)), tmp).read_text()
    )
    suite.update(random_init_draws=DRAWS, ablation={"recipes": RECIPES, "layers": LAYERS})
    path = tmp / "ablation.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


class Spy:
    """Counts baseline computations: fresh random-init encoders and MFCC vectors (per track)."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        import audioclr.evaluate.baselines as baselines
        import audioclr.evaluate.methods.random_init as random_init

        self.calls: Counter[str] = Counter()
        fresh, mfcc = random_init.fresh_encoder, baselines.mfcc_stats

        def fresh_spy(*args: Any, **kwargs: Any) -> Any:
            self.calls["random_init"] += 1
            return fresh(*args, **kwargs)

        def mfcc_spy(*args: Any, **kwargs: Any) -> Any:
            self.calls["mfcc"] += 1
            return mfcc(*args, **kwargs)

        mp.setattr(random_init, "fresh_encoder", fresh_spy)
        mp.setattr(baselines, "mfcc_stats", mfcc_spy)
        self.fits: Counter[str] = Counter()  # probes fitted (cache misses), by method folder
        import audioclr.evaluate.probe_cache as probe_cache
        import audioclr.evaluate.suite as suite

        cached, run_probe, fitted = suite.cached_probe, probe_cache.run_probe, []

        def run_probe_spy(*args: Any, **kwargs: Any) -> Any:
            fitted.append(1)
            return run_probe(*args, **kwargs)

        def cached_spy(folder: Path, *args: Any, **kwargs: Any) -> Any:
            before = len(fitted)
            result = cached(folder, *args, **kwargs)
            if len(fitted) > before:
                self.fits[folder.name] += 1
            return result

        mp.setattr(probe_cache, "run_probe", run_probe_spy)
        mp.setattr(suite, "cached_probe", cached_spy)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[str], Counter]:
    tmp = tmp_path_factory.mktemp("ablation")
    cfg = load_benchmark_config(ablation_suite(tmp))
    assert isinstance(cfg, AblationConfig)
    logs: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        spy = Spy(mp)
        report = run_ablation(cfg, tmp / "out", "test", logs.append)
    return tmp, report, logs, spy.calls


def test_report_has_every_recipe_and_layer_cell(finished: tuple) -> None:
    tmp, report, _, _ = finished
    out = tmp / "out"
    assert json.loads((out / "ablation.json").read_text()) == json.loads(json.dumps(report))
    tables = report["tables"]
    assert set(tables) == {"tones", "kind", "same_track retrieval", "same_release retrieval"}
    for name in ("tones", "kind"):
        rows = tables[name]["rows"]
        heads = 2 if name == "kind" else 1  # kind probes linear and knn
        assert len(rows) == 2 * heads  # fractions 0.5 and 1.0
        for row in rows:
            assert list(row["cells"]) == COLUMNS and row["best"]
            for col, c in row["cells"].items():
                recipe, layer = col.split("/")
                task = report["recipes"][recipe]["probe"][layer]["tasks"][name]
                assert task["layer"] == layer
                assert c["verdict"] in ("beats", "tie", "loses")
    for kind in ("same_track", "same_release"):
        rows = tables[f"{kind} retrieval"]["rows"]
        assert [r["row"] for r in rows] == ["precision@1", "precision@2"]
        assert all(list(r["cells"]) == ["base/all", "warm/all"] for r in rows)  # default layer
    md = (out / "ablation.md").read_text()
    for name in ("tones", "kind"):
        section = md.split(f"### {name} (")[1].split("###")[0]
        assert "| | " + " | ".join(COLUMNS) + " |" in section
        assert section.count("[") >= 4 * 2  # a mean [lo, hi] per column and row
    assert "One pretraining run per recipe at a small budget" in md
    assert "Which recipe wins which task" in md and "git commit" in md
    assert set(report["summary"]["counts"]) == set(COLUMNS)
    for recipe in RECIPES:
        assert report["recipes"][recipe]["pretrain"]["steps"] == 3


def test_every_recipe_is_paired_with_the_reference(finished: tuple) -> None:
    tmp, report, _, _ = finished
    v = report["versus"]
    assert v["reference"] == report["reference"] == "base"  # default: the first recipe
    assert v["missing"] == [] and set(v["counts"]) == {"warm/all", "warm/last"}
    tables = {t: {r["row"]: r["cells"] for r in x["rows"]} for t, x in report["tables"].items()}
    n = 0
    for table, rows in v["tables"].items():
        for row, cells in rows.items():
            for col, c in cells.items():
                layer = col.split("/")[1]
                # the paired difference's point estimate is the difference of the tables' means
                mine, ref = tables[table][row][col], tables[table][row][f"base/{layer}"]
                assert c["diff"] == pytest.approx(mine["mean"] - ref["mean"], abs=1e-6)
                lo, hi = c["ci95"]
                assert lo <= c["diff"] <= hi
                n += 1
    assert n == 2 * (2 + 4) + 2 * 2  # tones + kind rows at 2 layers, 2 retrieval kinds x k
    md = (tmp / "out" / "ablation.md").read_text()
    assert "## Each recipe paired with the reference recipe (base)" in md
    assert "| warm/all vs base |" not in md and "| recipe/layer vs base | better |" in md


def test_a_recipe_without_saved_predictions_is_listed_not_compared(finished: tuple) -> None:
    import shutil

    from audioclr.pipelines.versus import recipe_versus, versus_lines

    tmp, report, _, _ = finished
    out = tmp / "older"
    shutil.copytree(tmp / "out", out, symlinks=True)
    (out / "warm" / "probe" / "all" / "scores" / "tones.npz").unlink()  # as before they existed
    (out / "base" / "retrieval" / "same_track_per_query.npz").unlink()
    v = recipe_versus(report, out)
    assert [m.split(":")[0] for m in v["missing"]] == [
        "warm/all tones",
        "warm/all same_track retrieval",
    ]
    assert "warm/all" not in v["tables"]["tones"]["linear probe, 1 of labels"]
    assert "warm/last" in v["tables"]["tones"]["linear probe, 1 of labels"]
    assert "same_track retrieval" not in v["tables"]
    assert "Not compared (no saved predictions):" in "\n".join(versus_lines(v))


def test_baselines_are_embedded_once_and_shared(finished: tuple) -> None:
    tmp, _, _, calls = finished
    out = tmp / "out"
    # random-init: 2 tasks x 2 layers x 2 draws for probes + 2 draws for retrieval, once in all
    assert calls["random_init"] == 2 * len(LAYERS) * DRAWS + DRAWS
    # MFCC: 24 + 16 probe tracks (both layers) and 12 segments, once in all
    assert calls["mfcc"] == 24 + 16 + 12
    for kind in ("probe", "retrieval"):
        shared = sorted(p.name for p in (out / "shared" / kind).iterdir())
        assert shared[0] == "mfcc" and shared[1].startswith("random_init-") and len(shared) == 2
    for recipe in RECIPES:
        for emb in [
            *(out / recipe / "probe" / x / "emb" for x in LAYERS),
            out / recipe / "retrieval" / "emb",
        ]:
            assert (emb / "mfcc").is_symlink() and (emb / "random_init").is_symlink()
            assert (emb / "encoder").is_dir() and not (emb / "encoder").is_symlink()
        for layer in LAYERS:  # fitted probes: the baselines' shared, the encoder's the recipe's
            fits = out / recipe / "probe" / layer / "probes"
            assert (fits / "mfcc").resolve() == (out / "shared" / "probe-fits" / "mfcc").resolve()
            assert (fits / "random_init").is_symlink() and not (fits / "encoder").is_symlink()


def test_recipe_overrides_reach_its_pretraining(finished: tuple) -> None:
    tmp, report, _, _ = finished
    stored = {
        r: yaml.safe_load((tmp / "out" / r / "run" / "config.yaml").read_text()) for r in RECIPES
    }
    assert stored["warm"]["simclr"]["temperature"] == 0.2
    assert stored["warm"]["optim"]["warmup_steps"] == 2
    assert stored["base"]["simclr"]["temperature"] != 0.2
    for r in RECIPES:
        assert stored[r]["data"]["cache"] == str(tmp / "out" / "cache")  # one shared cache
        assert stored[r]["trainer"]["max_steps"] == 3
    ids = {report["recipes"][r]["pretrain"]["encoder_id"] for r in RECIPES}
    assert len(ids) == 2


def test_rerun_skips_every_stage_and_resumes_a_missing_one(finished: tuple) -> None:
    tmp, report, first, _ = finished
    n_stages = 1 + len(RECIPES) * (2 + len(LAYERS) + 1)
    assert sum("done in" in line and "skipped" not in line for line in first) == n_stages
    cfg = load_benchmark_config(tmp / "ablation.yaml")
    logs: list[str] = []
    again = run_ablation(cfg, tmp / "out", "test", logs.append)
    assert sum("skipped" in line for line in logs) == n_stages
    assert again["tables"] == report["tables"]
    # a run killed before warm's last probe: only that stage runs, baselines come from the cache
    stages_file = tmp / "out" / "stages.json"
    stages = json.loads(stages_file.read_text())
    del stages["stages"]["warm/probe/last"]
    stages_file.write_text(json.dumps(stages))
    logs = []
    with pytest.MonkeyPatch.context() as mp:
        spy = Spy(mp)
        run_ablation(cfg, tmp / "out", "test", logs.append)
    assert sum("skipped" in line for line in logs) == n_stages - 1
    assert "[warm/probe/last] ..." in logs and not spy.calls


def test_an_added_recipe_runs_alone_and_a_changed_one_is_refused(finished: tuple) -> None:
    import shutil

    tmp, report, _, _ = finished
    out = tmp / "grown"
    shutil.copytree(tmp / "out", out, symlinks=True)
    suite = yaml.safe_load((tmp / "ablation.yaml").read_text())
    suite["ablation"]["recipes"]["cool"] = ["simclr.temperature=0.3"]
    suite["ablation"]["reference"] = "warm"
    grown = tmp / "grown.yaml"
    grown.write_text(yaml.safe_dump(suite, sort_keys=False))
    logs: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        spy = Spy(mp)
        again = run_ablation(load_benchmark_config(grown), out, "test", logs.append)
    ran = [line for line in logs if line.endswith("...")]
    assert ran == [f"[cool/{s}] ..." for s in ("pretrain", "export", "probe/all", "probe/last")] + [
        "[cool/retrieval] ..."
    ]
    assert not spy.calls  # the baselines came from the shared embeddings
    assert set(spy.fits) == {"encoder"}  # and their probes from the shared fits
    assert list(again["recipes"]) == ["base", "warm", "cool"] and again["reference"] == "warm"
    for r in RECIPES:
        assert again["recipes"][r]["pretrain"] == report["recipes"][r]["pretrain"]
    assert set(again["versus"]["counts"]) == {"base/all", "base/last", "cool/all", "cool/last"}
    stored = json.loads((out / "stages.json").read_text())
    assert stored["recipes"]["cool"] == {
        "overrides": ["simclr.temperature=0.3"],
        "pools": [suite["pool"]],
    }
    suite["ablation"]["recipes"]["warm"] = ["simclr.temperature=0.5"]
    grown.write_text(yaml.safe_dump(suite, sort_keys=False))
    with pytest.raises(ConfigError, match=r"ablation\.recipes\.warm") as exc:
        run_ablation(load_benchmark_config(grown), out, "test", logs.append)
    assert "temperature=0.2" in str(exc.value)  # what it was pretrained with


def test_bad_recipe_key_names_the_recipe(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ConfigError, match=r"ablation\.recipes\.bad"):
        load_benchmark_config(SHIPPED, ["ablation.recipes.bad=[augment.nope.p=0]"])
    with pytest.raises(ConfigError, match=r"ablation\.recipes\.short"):
        load_benchmark_config(SHIPPED, ["ablation.recipes.short=[trainer.max_steps=3]"])
    with pytest.raises(ConfigError, match=r"ablation\.reference"):
        load_benchmark_config(SHIPPED, ["ablation.reference=nope"])
    with pytest.raises(ConfigError, match=r"ablation\.nope"):
        load_benchmark_config(SHIPPED, ["ablation.nope=1"])
    rc = main(
        [
            "benchmark",
            str(SHIPPED),
            "--out",
            str(tmp_path / "o"),
            "ablation.recipes.bad=[augment.nope.p=0]",
        ]
    )
    assert rc == 2 and "ablation.recipes.bad" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_shipped_ablation_config() -> None:
    cfg = load_benchmark_config(SHIPPED)
    assert isinstance(cfg, AblationConfig) and cfg.pretrain.max_steps == 500  # the steps bind
    assert list(cfg.ablation.recipes) == [
        "clmr",
        "timbre",
        "timbre_speech_quarter",
        "timbre_speech_eighth",
        "timbre_augself",
        "clmr_augself",
        "timbre_near",
        "timbre_near_speech",
        "timbre_seed1",
    ]
    assert cfg.ablation.recipes["timbre_seed1"] == [
        *cfg.ablation.recipes["timbre"],
        "trainer.seed=1",
    ]
    for name, shares in (("quarter", "[3, 1]"), ("eighth", "[7, 1]")):  # the mix alone differs
        assert cfg.ablation.recipes[f"timbre_speech_{name}"] == [
            *cfg.ablation.recipes["timbre"],
            f"data.cache_shares={shares}",
        ]
    assert cfg.ablation.layers == ["all"]
    assert cfg.ablation.reference == "timbre"  # the suite's recipe of ablation.md
    suite_positives = [
        o
        for o in load_benchmark_config(SHIPPED.with_name("suite.yaml")).pretrain.overrides
        if o.startswith("data.max_distance_seconds")
    ]
    assert suite_positives == cfg.ablation.recipes["timbre_near_speech"][1:]  # the suite's now
    assert cfg.ablation.recipes["clmr"] == ["augment_preset=clmr"]
    assert "augself.weight=0.5" in cfg.ablation.recipes["timbre_augself"]
    suite = load_benchmark_config(SHIPPED.with_name("suite.yaml"))
    assert type(suite) is BenchmarkConfig
    assert cfg.probe == suite.probe and cfg.retrieval == suite.retrieval
    assert (cfg.pool, cfg.extra_pools, cfg.sample_rate, cfg.random_init_draws) == (
        suite.pool,
        suite.extra_pools,
        suite.sample_rate,
        suite.random_init_draws,
    )
