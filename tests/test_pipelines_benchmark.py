"""The benchmark runner end to end on a tiny synthetic suite; missing data; the real data sets."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import tone, write_audio

from audioclr.cli import main
from audioclr.config import load_config
from audioclr.errors import AudioReadError, ConfigError
from audioclr.pipelines.bench_config import BenchmarkConfig, check_datasets
from audioclr.pipelines.benchmark import run_benchmark

SR = 8000
OFF = ["polarity", "filter", "delay", "pitch", "reverb", "background", "time_mask", "freq_mask"]
REAL_SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "suite.yaml"


def _labels_csv(path: Path, rows: list[tuple[str, str, str | None]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split"] if rows[0][2] else ["path", "label"])
        for p, label, split in rows:
            w.writerow([p, label] + ([split] if split else []))
    return path


def _noisy_tone(freq: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    x = tone(freq * (1 + 0.03 * rng.standard_normal()), SR, seconds, 0.4)
    return (x + rng.normal(0, 0.05, x.size)).astype(np.float32)


def make_data(root: Path, rng: np.random.Generator) -> Path:
    """A pool of 6 tracks, two labelled tasks (tones; tone vs noise) and 4 x 3 segments."""
    for i, f in enumerate([220, 330, 440, 660, 880, 1320]):
        write_audio(root / "pool" / f"t{i}.wav", _noisy_tone(f, 2.0, rng), SR)
    splits = ["train"] * 4 + ["valid"] * 2 + ["test"] * 2
    rows = []
    for name, f in {"low": 300.0, "mid": 900.0, "high": 2500.0}.items():
        for i, s in enumerate(splits):
            write_audio(root / "tones" / name / f"{i}.wav", _noisy_tone(f, 0.5, rng), SR)
            rows.append((f"{name}/{i}.wav", name, s))
    _labels_csv(root / "tones" / "labels.csv", rows)
    rows = []
    for i, s in enumerate(splits):
        write_audio(root / "kind" / f"tone{i}.wav", _noisy_tone(500, 0.5, rng), SR)
        noise = rng.normal(0, 0.2, SR // 2).astype(np.float32)
        write_audio(root / "kind" / f"noise{i}.wav", noise, SR)
        rows += [(f"tone{i}.wav", "tone", s), (f"noise{i}.wav", "noise", s)]
    _labels_csv(root / "kind" / "labels.csv", rows)
    rows = []
    for t, f in enumerate([250, 500, 1000, 2000]):
        for j in range(3):
            write_audio(root / "segs" / f"tr{t}" / f"seg{j}.wav", _noisy_tone(f, 0.5, rng), SR)
            rows.append((f"tr{t}/seg{j}.wav", f"tr{t}", None))
    _labels_csv(root / "segs" / "labels.csv", rows)
    release = [(p, "low" if t in ("tr0", "tr1") else "high", None) for p, t, _ in rows]
    _labels_csv(root / "segs" / "release.csv", release)
    return root


def tiny_suite(data: Path, tmp: Path) -> Path:
    """A suite YAML: tiny melcnn, 3 pretraining steps, 2 fractions x 2 seeds, k in (1, 2)."""
    suite = {
        "data_root": str(data),
        "pool": "pool",
        "sample_rate": SR,
        "device": "cpu",
        "pretrain": {
            "config": "simclr_melcnn",
            "minutes": 5,
            "max_steps": 3,
            "overrides": [
                "model.encoder_kwargs={widths: [8, 16], n_mels: 16, n_fft: 256, hop_length: 128, "
                "input_samples: 2000}",
                "trainer.batch_size=4",
                "data.num_workers=0",
                "trainer.progress=false",
                "trainer.accelerator=cpu",
                "optim.warmup_steps=1",
                *[f"augment.{k}.p=0" for k in OFF],
            ],
        },
        "probe": {
            "tasks": [
                {"name": "tones", "labels": "tones/labels.csv"},
                {"name": "kind", "labels": "kind/labels.csv", "heads": ["linear", "knn"]},
            ],
            "fractions": [0.5, 1.0],
            "seeds": [0, 1],
            "probe": {"weight_decays": [0.0], "max_epochs": 10, "patience": 3},
        },
        "retrieval": {
            "labels": "segs/labels.csv",
            "release_labels": "segs/release.csv",
            "k": [1, 2],
        },
    }
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[str]]:
    tmp = tmp_path_factory.mktemp("bench")
    suite = tiny_suite(make_data(tmp / "data", np.random.default_rng(0)), tmp)
    logs: list[str] = []
    report = run_benchmark(load_config(BenchmarkConfig, suite), tmp / "out", "test", logs.append)
    return tmp, report, logs


def _md_numbers(md: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d{3}", md)]


def test_report_md_numbers_match_json(finished: tuple[Path, dict, list[str]]) -> None:
    tmp, report, _ = finished
    out = tmp / "out"
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    md = (out / "report.md").read_text()
    expected = []
    for task in report["probe"]["tasks"].values():
        for head in sorted({h for r in task["results"].values() for h in r}):
            for f in ("0.5", "1.0"):
                for method in ("encoder", "random_init", "mfcc"):
                    r = task["results"][method][head][f][task["metric"]]
                    assert r["mean"] == pytest.approx(np.mean(r["values"]))
                    expected += [round(r["mean"], 3), *(round(x, 3) for x in r["ci95"])]
                v = task["verdict"][head][f]
                assert v == task["results"]["encoder"][head][f]["vs_best_baseline"]
                expected += [round(v["diff"], 3), *(round(x, 3) for x in v["ci95"])]
        for m in task["layerwise"]["layers"].values():
            expected += [round(m["mean"], 3), *(round(x, 3) for x in m["ci95"])]
    for kind in ("same_track", "same_release"):
        for method in ("encoder", "random_init", "mfcc"):
            by_k = report["retrieval"][kind]["results"][method]
            for k in ("1", "2"):
                expected += [
                    round(by_k[k][f"precision@{k}"], 3),
                    *(round(x, 3) for x in by_k[k][f"precision@{k}_ci95"]),
                ]
            expected += [round(by_k["2"]["map@2"], 3)]
        for k in ("1", "2"):
            v = report["retrieval"][kind]["results"]["encoder"][k]["vs_best_baseline"]
            expected += [round(v["diff"], 3), *(round(x, 3) for x in v["ci95"])]
    assert _md_numbers(md) == pytest.approx(expected, abs=1e-9)
    assert (out / "report.png").stat().st_size > 1000
    assert report["pretrain"]["steps"] == 3 and "git commit" in md and "cores" in md
    from audioclr.ssl.train import cpu_has_native_bf16

    precision = "bf16-mixed" if cpu_has_native_bf16() else "32-true"  # auto on this CPU
    assert report["pretrain"]["precision"] == precision and f"precision {precision})" in md
    # the objective is named, read back from the run's resolved config
    method = yaml.safe_load((out / "run" / "config.yaml").read_text())["method"]
    assert report["pretrain"]["method"] == method and f"(method {method}) on" in md


def test_retrieval_matches_brute_force(finished: tuple[Path, dict, list[str]]) -> None:
    tmp, report, _ = finished
    from audioclr.evaluate.store import load_embeddings

    for method in ("encoder", "mfcc"):
        emb = load_embeddings(tmp / "out" / "retrieval" / "emb" / method)
        x = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
        track = np.array([i.split("/")[0] for i in emb.ids])
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        order = np.argsort(-sim, axis=1, kind="stable")
        for k in (1, 2):
            hits = track[order[:, :k]] == track[:, None]
            got = report["retrieval"]["same_track"]["results"][method][str(k)][f"precision@{k}"]
            assert got == pytest.approx(hits.mean(), abs=1e-6)
    # every query's precision@k is saved (for paired comparisons between runs): its mean is
    # the reported precision, its clusters the queries' tracks
    from audioclr.pipelines.bench_retrieval import load_per_query

    for kind in ("same_track", "same_release"):
        saved = load_per_query(tmp / "out" / "retrieval" / f"{kind}_per_query.npz")
        assert [c for c in saved["clusters"]] == [q.split("/")[0] for q in saved["queries"]]
        for method in ("encoder", "mfcc", "random_init"):
            for k in (1, 2):
                got = report["retrieval"][kind]["results"][method][str(k)][f"precision@{k}"]
                values = saved[f"{method}/precision@{k}"]
                assert values.shape[1] == len(saved["queries"])
                assert got == pytest.approx(values.mean(), abs=1e-9)
    # the 4 segment "tracks" are tones at 250/500/1000/2000 Hz: MFCC finds the same track
    assert report["retrieval"]["same_track"]["results"]["mfcc"]["1"]["precision@1"] == 1.0


def test_same_release_retrieval_drops_the_query_track_and_matches_brute_force(
    finished: tuple[Path, dict, list[str]],
) -> None:
    tmp, report, _ = finished
    from audioclr.evaluate.store import load_embeddings

    rel = report["retrieval"]["same_release"]
    assert rel["relevance"] == "same release, other track" and rel["groups"] == 2
    for method in ("encoder", "mfcc"):
        emb = load_embeddings(tmp / "out" / "retrieval" / "emb" / method)
        x = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
        track = np.array([i.split("/")[0] for i in emb.ids])
        release = np.where(np.isin(track, ["tr0", "tr1"]), "low", "high")
        sim = x @ x.T
        sim[track[:, None] == track[None, :]] = -np.inf  # own track (and self) left out
        order = np.argsort(-sim, axis=1, kind="stable")
        for k in (1, 2):
            hits = release[order[:, :k]] == release[:, None]
            got = rel["results"][method][str(k)][f"precision@{k}"]
            assert got == pytest.approx(hits.mean(), abs=1e-6)
    same_track = report["retrieval"]["same_track"]["results"]["mfcc"]["1"]["precision@1"]
    assert same_track == 1.0 > rel["results"]["mfcc"]["1"]["precision@1"]  # own track dropped


def test_rerun_skips_every_stage_and_other_config_is_refused(
    finished: tuple[Path, dict, list[str]],
) -> None:
    tmp, report, first = finished
    assert sum("done in" in line and "skipped" not in line for line in first) == 5
    logs: list[str] = []
    cfg = load_config(BenchmarkConfig, tmp / "suite.yaml")
    again = run_benchmark(cfg, tmp / "out", "test", logs.append)
    assert sum("skipped" in line for line in logs) == 5
    assert again["probe"] == report["probe"] and again["retrieval"] == report["retrieval"]
    other = load_config(BenchmarkConfig, tmp / "suite.yaml", ["probe.seeds=[5]"])
    with pytest.raises(ConfigError, match="another config"):
        run_benchmark(other, tmp / "out", "test", logs.append)


def test_missing_data_set_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "music_pool" / "audio" / "pretrain").mkdir(parents=True)
    cfg = load_config(BenchmarkConfig, REAL_SUITE, [f"data_root={tmp_path}"])
    with pytest.raises(AudioReadError, match="instruments") as exc:
        check_datasets(cfg)
    assert "music_pool/audio/pretrain" not in str(exc.value) and "build_all.py" in exc.value.hint
    rc = main(["benchmark", str(REAL_SUITE), "--out", str(tmp_path / "o"), f"data_root={tmp_path}"])
    err = capsys.readouterr().err
    assert rc == 2 and "digits/folds.csv" in err and "build_all.py" in err
    assert not (tmp_path / "o").exists()


def test_real_data_sets_present_for_the_shipped_suite() -> None:
    cfg = load_config(BenchmarkConfig, REAL_SUITE)
    if not (cfg.root / "music_pool").is_dir():
        pytest.skip(f"real data sets not built under {cfg.root} (benchmarks/datasets/build_all.py)")
    paths = check_datasets(cfg)
    assert len(list(paths["pool"].rglob("*.*"))) >= 150  # the pretraining three quarters
    assert {t.name for t in cfg.probe.tasks} == {
        "instruments_cross_soundfont",
        "instruments_same_soundfont",
        "digits",
        "instruments_freepats",
    }
    assert paths["retrieval_release"].is_file()


def test_compare_pairs_two_runs_row_by_row(
    finished: tuple[Path, dict, list[str]], capsys: pytest.CaptureFixture
) -> None:
    from audioclr.errors import AudioclrError
    from audioclr.pipelines.versus import runs_versus

    tmp, report, _ = finished
    # a second run: the same suite pretrained from another seed (its own encoder)
    cfg = load_config(BenchmarkConfig, tmp / "suite.yaml")
    cfg.pretrain.overrides.append("trainer.seed=7")
    other = run_benchmark(cfg, tmp / "seed7", "test", lambda _: None)
    assert other["pretrain"]["encoder_id"] != report["pretrain"]["encoder_id"]
    v = runs_versus(tmp / "seed7", tmp / "out")
    assert v["reference"] == "out" and v["missing"] == []
    n = 0
    for task, t in report["probe"]["tasks"].items():
        mine = other["probe"]["tasks"][task]["results"]["encoder"]
        for head, by_f in t["results"]["encoder"].items():
            for f, cell in by_f.items():
                c = v["tables"][task][f"{head} probe, {float(f):g} of labels"]["seed7"]
                # the point estimate is the difference of the two reports' means
                diff = mine[head][f][t["metric"]]["mean"] - cell[t["metric"]]["mean"]
                assert c["diff"] == pytest.approx(diff, abs=1e-6)
                assert c["ci95"][0] <= c["diff"] <= c["ci95"][1]
                n += 1
    assert n == 2 + 4  # tones linear, kind linear + knn, at 2 fractions
    for kind, ret in report["retrieval"].items():
        for k, row in ret["results"]["encoder"].items():
            c = v["tables"][f"{kind} retrieval"][f"precision@{k}"]["seed7"]
            mine = other["retrieval"][kind]["results"]["encoder"][k]["precision@" + k]
            assert c["diff"] == pytest.approx(mine - row["precision@" + k], abs=1e-6)
    # swapped: the differences change sign; against itself: zero and a tie everywhere
    back = runs_versus(tmp / "out", tmp / "seed7")
    for table, rows in v["tables"].items():
        for row, cells in rows.items():
            assert back["tables"][table][row]["out"]["diff"] == pytest.approx(
                -cells["seed7"]["diff"]
            )
    same = runs_versus(tmp / "out", tmp / "out")
    assert set(same["counts"]["out"]) == {"beats", "tie", "loses"}
    assert same["counts"]["out"]["tie"] == sum(len(r) for r in same["tables"].values())
    # the command: the table on stdout and in --out; a folder without a report: one line
    md = tmp / "versus.md"
    assert main(["compare", str(tmp / "seed7"), str(tmp / "out"), "--out", str(md)]) == 0
    printed = capsys.readouterr().out
    assert "| seed7 | " in printed and md.read_text() in printed
    assert "## Each run paired with the reference run (out)" in printed
    with pytest.raises(AudioclrError, match="not a finished benchmark run"):
        runs_versus(tmp / "data", tmp / "out")
    assert main(["compare", str(tmp / "data"), str(tmp / "out")]) != 0
    err = capsys.readouterr().err
    assert "report.json not found" in err and "Traceback" not in err


def test_report_says_where_each_encoders_batchnorm_statistics_came_from():
    from audioclr.pipelines.bench_report import bn_text

    task = bn_text({"config": {"probe": {"encoder_bn": "task"}}})
    exported = bn_text({"config": {"probe": {"encoder_bn": "pretraining"}}})
    assert "SSL's too (`probe.encoder_bn=task`)" in task and "exported" not in task
    assert "SSL's are the exported ones" in exported
    assert bn_text({"config": {}}) == exported  # reports from before the option
