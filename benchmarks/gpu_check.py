"""The GPU check: does every CUDA path run, and how fast, on the machine at hand.

Steps, each printed and written to the report (``--out``, default ``benchmarks/results/gpu.md``;
rewritten atomically after every step, so a run cut short keeps what it measured):

1. the machine: ``nvidia-smi`` and torch's view (device name, capability, memory, versions);
2. ``pytest -m cuda`` (the CUDA-marked tests);
3. ``BatchedAugment`` on the device against the CPU on the same seeds: the same parameters
   drawn (``return_params=True``; noise and reverb draws from the same CPU generator), the
   outputs close, and augmented clips/s on the device;
4. pretraining melcnn and samplecnn for a fixed number of steps, bf16 AMP, augmentation in
   the step on the device: finite losses, clips/s, peak GPU memory
   (``torch.cuda.max_memory_allocated``), model-only (batches in memory, no augmentation) vs
   end to end (clip cache, DataLoader workers, augmentation on the device);
5. ``embed`` on the device: seconds of audio per second (x realtime);
6. with the time left, the default recipe (``configs/pretrain/simclr_melcnn.yaml``, timbre
   preset) pretrained for up to 4 minutes on the benchmark music pool (``music_pool`` under
   ``$AUDIOCLR_DATA`` or ``~/.cache/audioclr-data``; when it is absent, as on a machine that got
   the repository alone, on the built-in demo corpus, and the report says so), then probed
   (embedding on the device, the probes fitted on the CPU) with ``audioclr prepare`` /
   ``pretrain`` / ``export`` / ``probe``, as a user runs them.

``--budget-min`` (default 8) bounds the whole run: a step that would not fit in what is left is
skipped, and the report says so. ``--cpu`` runs the same steps at toy size on the CPU in about a
minute (the test ``tests/test_gpu_check.py`` runs it so the script cannot rot); its report goes
to a temporary file unless ``--out`` is given.

    make gpu-check                                   # on a CUDA machine, <= 8 min
    make gpu-check-cpu                               # the toy run on the CPU
    .venv/bin/python benchmarks/gpu_check.py [--cpu] [--budget-min 8] [--out PATH]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pretrain as bench_pretrain  # benchmarks/pretrain.py: synthetic cache, step clock
import pytorch_lightning as pl
import torch

from audioclr.atomic import atomic_write_text
from audioclr.augment.batched import BatchedAugment
from audioclr.augment.config import AugmentConfig
from audioclr.config import load_config, resolve_config_path
from audioclr.ssl.checkpoint import find_checkpoint
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.io import safe_torch_load
from audioclr.ssl.train import pretrain

ROOT = Path(__file__).resolve().parents[1]
SR = bench_pretrain.SR
RESULTS = ROOT / "benchmarks" / "results" / "gpu.md"
DEFAULT_RECIPE = "simclr_melcnn"


@dataclass
class Size:
    """What each step does at CUDA size or toy (``--cpu``) size."""

    tracks: int  # synthetic cache for steps 4 and 5
    seconds: float
    batch: int
    warmup: int
    steps: int
    workers: int
    aug_batch: int
    recipe_minutes: float
    demo_per_class: int


CUDA_SIZE = Size(64, 30.0, 48, 5, 20, min(8, os.cpu_count() or 1), 64, 4.0, 32)
CPU_SIZE = Size(8, 4.0, 4, 1, 2, 0, 4, 0.1, 3)


@dataclass
class Check:
    """The run: device, deadline, and the report as it grows."""

    args: argparse.Namespace
    device: str
    size: Size
    out: Path
    tmp: Path
    deadline: float
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    cache: Path | None = None  # the synthetic clip cache of steps 4 and 5
    melcnn_run: Path | None = None  # step 4's end-to-end melcnn run, embedded in step 5

    def left(self) -> float:
        """Seconds left in the budget."""
        return self.deadline - time.monotonic()

    def say(self, text: str = "") -> None:
        """Print ``text`` and add it to the report."""
        print(text, flush=True)
        self.lines.append(text)

    def fail(self, what: str) -> None:
        """Record a failed check (the run goes on; the exit status is 1)."""
        self.failures.append(what)
        self.say(f"**FAILED**: {what}")

    def write(self) -> None:
        """Rewrite the report atomically."""
        atomic_write_text(self.out, "\n".join(self.lines) + "\n")


def run(cmd: list[str], timeout: float, **kw: Any) -> subprocess.CompletedProcess:
    """Run ``cmd`` in the repository root with a timeout; output captured as text."""
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(1.0, timeout), **kw
    )


def cli(*words: str) -> list[str]:
    """The ``audioclr`` command line of this interpreter."""
    return [sys.executable, "-m", "audioclr.cli", *words]


def step_machine(c: Check) -> None:
    """What the machine has: ``nvidia-smi``, torch's view, the CPU."""
    smi = shutil.which("nvidia-smi")
    text = run([smi], 30).stdout if smi else "nvidia-smi: not found"
    c.say("```\n" + text.strip() + "\n```")
    c.say(f"- CPU: {bench_pretrain.cpu_model()}, {os.cpu_count()} cores")
    cudnn = torch.backends.cudnn.version()
    c.say(f"- torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}")
    if c.device == "cuda":
        p = torch.cuda.get_device_properties(0)
        cap = ".".join(map(str, torch.cuda.get_device_capability(0)))
        c.say(
            f"- torch sees {torch.cuda.device_count()} device(s); 0: "
            f"{torch.cuda.get_device_name(0)}, capability {cap}, "
            f"{p.total_memory / 2**30:.1f} GiB, bf16 {torch.cuda.is_bf16_supported()}"
        )
    else:
        c.say(f"- CPU mode (--cpu): torch.cuda.is_available() = {torch.cuda.is_available()}")


def step_cuda_tests(c: Check) -> None:
    """``pytest -m cuda``: the CUDA-marked tests (they skip without a device)."""
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-p", "no:cacheprovider", "tests"]
    r = run(cmd, min(c.left() - 30, 240))
    tail = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    c.say(f"- `pytest -m cuda`: {tail} (exit {r.returncode})")
    if r.returncode not in (0, 5) or (
        c.device == "cuda" and "skipped" in tail and "passed" not in tail
    ):
        c.say("```\n" + r.stdout[-3000:] + r.stderr[-2000:] + "\n```")
        c.fail("pytest -m cuda")


def all_on() -> AugmentConfig:
    """Every transform on (``p = 1``), so the comparison covers the whole chain."""
    cfg = AugmentConfig()
    for name in ("polarity", "noise", "gain", "filter", "delay", "pitch", "reverb", "background"):
        getattr(cfg, name).p = 1.0
    return cfg


def step_augment(c: Check) -> None:
    """``BatchedAugment`` on the device vs the CPU: same seeds, same parameters, close outputs."""
    aug = BatchedAugment(all_on(), SR)
    worst = 0.0
    for seed in range(4):
        x = torch.randn(8, int(2.0 * SR), generator=torch.Generator().manual_seed(100 + seed))
        y_cpu, p_cpu = aug(x, torch.Generator().manual_seed(seed), return_params=True)
        y_dev, p_dev = aug(x.to(c.device), torch.Generator().manual_seed(seed), return_params=True)
        if y_dev.device.type != c.device or not torch.equal(p_dev.cpu(), p_cpu):
            c.fail(f"augment seed {seed}: parameters or device differ")
        err = float((y_dev.cpu() - y_cpu).abs().max() / y_cpu.abs().max().clamp_min(1e-6))
        worst = max(worst, err)
    c.say(
        f"- CPU vs {c.device}, 4 seeds x 8 clips, every transform on: same parameters drawn; "
        f"largest output difference {worst:.2e} of the peak"
    )
    if not worst <= 1e-3:
        c.fail(f"augment outputs differ by {worst:.2e} of the peak (> 1e-3)")
    g = torch.Generator(device=c.device).manual_seed(0)
    x = torch.randn(c.size.aug_batch, int(2.7 * SR), device=c.device)
    aug(x, g)
    sync(c)
    t0, reps = time.perf_counter(), 5
    for _ in range(reps):
        y = aug(x, g)
    sync(c)
    rate = reps * len(x) / (time.perf_counter() - t0)
    c.say(
        f"- augmentation on {c.device} (generator on the device), batch {len(x)} x 2.7 s: "
        f"{rate:.0f} clips/s; finite {bool(torch.isfinite(y).all())}"
    )


def sync(c: Check) -> None:
    """Wait for the device."""
    if c.device == "cuda":
        torch.cuda.synchronize()


class LossClock(bench_pretrain.StepClock):
    """Step times (from ``benchmarks/pretrain.py``) plus each step's loss."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, outputs: Any, *a: Any) -> None:
        super().on_train_batch_end(trainer)
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss) if loss is not None else float("nan"))


def leg_config(c: Check, enc: str, cache: Path, run_dir: Path, extra: list[str]) -> PretrainConfig:
    """The pretraining config of a leg: the encoder's config, fixed steps, AMP on CUDA."""
    s = c.size
    over = [
        f"data.cache={cache}",
        f"trainer.batch_size={s.batch}",
        f"trainer.max_steps={s.warmup + s.steps + 1}",
        "trainer.checkpoint_every=100000",
        "trainer.progress=false",
        f"trainer.accelerator={'gpu' if c.device == 'cuda' else 'cpu'}",
        f"trainer.precision={'bf16-mixed' if c.device == 'cuda' else '32'}",
        "data.augment_on=device",
        f"run.dir={run_dir}",
        *extra,
    ]
    path = resolve_config_path(bench_pretrain.CONFIGS[enc], "pretrain")
    return load_config(PretrainConfig, path, over)


def step_pretrain(c: Check) -> None:
    """melcnn and samplecnn: model-only vs end to end, fixed steps (keeps the melcnn run)."""
    s = c.size
    c.cache = bench_pretrain.make_cache(c.tmp / "synth", s.tracks, s.seconds)
    amp = "bf16 AMP" if c.device == "cuda" else "fp32"
    c.say(
        f"batch {s.batch}, {s.warmup} untimed + {s.steps} timed steps, {amp}; end to end: "
        f"clip cache ({s.tracks} synthetic tracks), {s.workers} DataLoader workers, "
        "augmentation in the step on the device\n"
    )
    c.say(
        "| encoder | leg | clips/s | of model-only | peak GPU memory | losses finite | last loss |"
    )
    c.say("|---|---|---|---|---|---|---|")
    for enc in ("melcnn", "samplecnn"):
        model_rate = None
        for leg, extra in (
            ("model-only", ["data.num_workers=0", *bench_pretrain.NO_AUGMENT]),
            ("end to end", [f"data.num_workers={s.workers}"]),
        ):
            run_dir = Path(tempfile.mkdtemp(dir=c.tmp, prefix=f"{enc}-"))
            cfg = leg_config(c, enc, c.cache, run_dir, extra)
            kwargs: dict[str, Any] = {}
            if leg == "model-only":
                kwargs = {"dataset": bench_pretrain.in_memory(cfg, s.batch), "sample_rate": SR}
            if c.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            clock = LossClock()
            pretrain(cfg, callbacks=[clock], **kwargs)
            periods, _ = clock.timed(s.warmup)
            rate = s.batch / statistics.median(periods)
            model_rate = model_rate or rate
            peak = (
                f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
                if c.device == "cuda"
                else "-"
            )
            finite = bool(np.isfinite(clock.losses).all()) and len(clock.losses) > 0
            c.say(
                f"| {enc} | {leg} | {rate:.1f} | {rate / model_rate:.0%} | {peak} | {finite} | "
                f"{clock.losses[-1]:.3f} |"
            )
            if not finite:
                c.fail(f"{enc} {leg}: non-finite loss {clock.losses}")
            if enc == "melcnn" and leg == "end to end":
                c.melcnn_run = run_dir


def step_embed(c: Check) -> None:
    """Export step 4's melcnn run and embed its cache on the device: x realtime."""
    from audioclr.evaluate.embed import embed_tracks
    from audioclr.ssl.export import export_encoder, load_encoder

    if c.melcnn_run is None or c.cache is None:
        c.say("- skipped: step 4 made no melcnn run")
        return
    cache = c.cache
    enc = export_encoder(c.melcnn_run, c.tmp / "melcnn.pt")
    loaded = load_encoder(enc, map_location=c.device)
    audio_s = c.size.tracks * c.size.seconds
    embed_tracks(loaded, cache, c.tmp / "warm", device=c.device, progress=False)  # warm-up
    t0 = time.perf_counter()
    emb = embed_tracks(loaded, cache, c.tmp / "emb", device=c.device, progress=False)
    wall = time.perf_counter() - t0
    c.say(
        f"- `embed` (melcnn, layer last, batch 64) on {c.device}: {len(emb.ids)} tracks, "
        f"{audio_s / 60:.1f} min of audio in {wall:.1f} s = {audio_s / wall:.0f} x realtime"
    )


def recipe_data(c: Check) -> tuple[Path, Path, str]:
    """Pretraining audio, a labels CSV to probe, and a line saying which they are."""
    root = Path(os.environ.get("AUDIOCLR_DATA") or Path.home() / ".cache" / "audioclr-data")
    pool, labels = root / "music_pool" / "audio" / "pretrain", root / "instruments" / "labels.csv"
    if c.device == "cuda" and pool.is_dir() and labels.is_file():
        return pool, labels, f"the benchmark music pool ({pool}); probe: instruments ({labels})"
    from audioclr.data.demo import make_demo_corpus

    n = c.size.demo_per_class
    demo = c.tmp / "demo"
    labels = make_demo_corpus(demo, per_class=n, unlabeled_per_class=n, progress=False)
    why = "toy size (--cpu)" if c.device != "cuda" else f"{pool} or {labels} is absent"
    return (
        demo / "unlabeled",
        labels,
        (
            f"**the built-in demo corpus** ({why}): pretrain on {5 * n} unlabelled tracks, "
            f"probe on {5 * n} labelled ones; the figures are not comparable with the suite's"
        ),
    )


def step_recipe(c: Check) -> None:
    """The default recipe for up to 4 minutes on the device, then a CPU probe."""
    audio, labels, which = recipe_data(c)
    c.say(f"- data: {which}")
    cache, run_dir, enc, out = (c.tmp / n for n in ("pool_cache", "recipe", "recipe.pt", "probe"))
    t0 = time.perf_counter()
    r = run(cli("prepare", str(audio), str(cache), "--no-progress"), c.left())
    c.say(f"- `audioclr prepare`: {time.perf_counter() - t0:.0f} s (exit {r.returncode})")
    minutes = min(c.size.recipe_minutes, (c.left() - 90) / 60)
    if r.returncode or minutes <= 0:
        c.fail(f"prepare: {r.stderr[-500:]}") if r.returncode else c.say("- skipped: time budget")
        return
    toy = (
        [
            "trainer.batch_size=4",
            "model.encoder_kwargs.input_samples=33075",
            "trainer.max_steps=3",
            "optim.warmup_steps=1",
        ]
        if c.device != "cuda"
        else []
    )
    over = [
        f"data.cache={cache}",
        f"run.dir={run_dir}",
        f"trainer.max_minutes={minutes:.2f}",
        "trainer.progress=false",
        "trainer.checkpoint_every=200",
        *([] if toy else ["trainer.max_steps=100000"]),
        *toy,
    ]
    t0 = time.perf_counter()
    r = run(cli("pretrain", "--config", DEFAULT_RECIPE, *over), c.left() + 60)
    wall = time.perf_counter() - t0
    if r.returncode:
        c.fail(f"pretrain: {r.stderr[-800:]}")
        return
    steps = safe_torch_load(find_checkpoint(run_dir), "checkpoint")["global_step"]
    c.say(
        f"- `audioclr pretrain --config {DEFAULT_RECIPE}` for {minutes:.1f} min on "
        f"{c.device}: {steps} steps, {wall:.0f} s wall (with start-up)"
    )
    run(cli("export", str(run_dir), str(enc)), 120, check=True)
    t0 = time.perf_counter()
    r = run(
        cli(
            "probe",
            str(enc),
            str(labels),
            str(out),
            "task.fractions=[1.0]",
            "task.seeds=[0]",
            f"device={c.device}",  # embedding; the probes fit on the CPU
            *(["methods=[encoder,mfcc]"] if c.device == "cuda" else ["methods=[encoder]"]),
            *([] if c.device == "cuda" else ["task.layer=last"]),
        ),
        c.left() + 120,
    )
    if r.returncode:
        c.fail(f"probe: {r.stderr[-800:]}")
        return
    c.say(f"- `audioclr probe` (fitting on the CPU): {time.perf_counter() - t0:.0f} s; report:\n")
    c.say((out / "report.md").read_text().replace("# ", "### ", 1))
    c.say("\nCompare: 30 CPU-minutes of the suite, `benchmarks/results/latest.md`.")


STEPS: list[tuple[str, float, Callable[[Check], None]]] = [  # title, seconds it needs, step
    ("1. The machine", 5, step_machine),
    ("2. CUDA-marked tests", 60, step_cuda_tests),
    ("3. BatchedAugment: device vs CPU", 20, step_augment),
    ("4. Pretraining throughput", 90, step_pretrain),
    ("5. Embedding on the device", 20, step_embed),
    ("6. The default recipe, then a probe", 150, step_recipe),
]


def git_commit() -> str:
    """``HEAD``, with ``+changes`` when the working tree differs."""
    head = run(["git", "rev-parse", "--short", "HEAD"], 10).stdout.strip() or "unknown"
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], 10).stdout.strip()
    return head + (" +uncommitted changes" if dirty else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="toy size on the CPU (no GPU needed)")
    ap.add_argument("--budget-min", type=float, default=8.0, help="time for the whole run")
    ap.add_argument(
        "--out", help=f"report (default {RESULTS.relative_to(ROOT)}; --cpu: a temp file)"
    )
    args = ap.parse_args()
    if not args.cpu and not torch.cuda.is_available():
        print(
            "error: no CUDA device (torch.cuda.is_available() is False); use --cpu for the toy run",
            file=sys.stderr,
        )
        return 2
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    out = Path(args.out) if args.out else (tmp / "gpu.md" if args.cpu else RESULTS)
    c = Check(
        args,
        "cpu" if args.cpu else "cuda",
        CPU_SIZE if args.cpu else CUDA_SIZE,
        out,
        tmp,
        time.monotonic() + 60 * args.budget_min,
    )
    name = "CPU (toy size, --cpu)" if args.cpu else torch.cuda.get_device_name(0)
    c.say(f"# GPU check: {name}\n")
    c.say(
        f"{datetime.now().isoformat(timespec='seconds')}; commit {git_commit()}; budget "
        f"{args.budget_min:g} min; command `python {' '.join(sys.argv)}`\n"
    )
    for title, need, call in STEPS:
        c.say(f"\n## {title}\n")
        if c.left() < need:
            c.say(
                f"- skipped: {c.left():.0f} s of the {args.budget_min:g}-minute budget left, "
                f"this step needs about {need} s"
            )
        else:
            t0 = time.perf_counter()
            try:
                call(c)
            except Exception as exc:  # noqa: BLE001 (a failed step is reported; the rest run)
                c.fail(f"{title}: {type(exc).__name__}: {exc}")
            c.say(f"\n({time.perf_counter() - t0:.0f} s)")
        c.write()
    c.say(
        f"\n{'all checks passed' if not c.failures else 'FAILED: ' + '; '.join(c.failures)}; "
        f"{60 * args.budget_min - c.left():.0f} s in all"
    )
    c.write()
    print(f"wrote {out}")
    for path in tmp.iterdir():  # runs, caches, embeddings; the report stays
        if path.is_dir():
            shutil.rmtree(path)
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
