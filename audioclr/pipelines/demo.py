"""``audioclr demo``: the whole journey on the built-in demo corpus, one CLI command per step.

Each step is the exact ``audioclr ...`` command a user would type, run in-process through the
``command`` function the CLI passes in (its own ``main``), and skipped on a rerun when its
output is already there (pretraining resumes from its last checkpoint). The summary reads the
files the steps wrote, so it shows exactly what a user gets from the same commands on their
own folder.

Example:
    >>> from audioclr.cli import main
    >>> run_demo(Path("demo_out"), main, pretrain_minutes=3.0)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import io
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from audioclr.errors import AudioclrError

Command = Callable[[Sequence[str]], int]  # the CLI's main: argv -> exit code


@dataclass
class Step:
    """One journey step: a title, the CLI arguments, and how to tell it is already done."""

    title: str
    argv: list[str]
    done: Callable[[], bool]
    capture: Path | None = None  # write the command's stdout here (for the summary)


def _run(step: Step, command: Command) -> float:
    """Run ``step`` through the CLI unless it is done; returns seconds spent."""
    shown = "audioclr " + shlex.join(step.argv)
    if step.done():
        print(f"\n== {step.title}: already done, reusing it\n   $ {shown}", flush=True)
        return 0.0
    print(f"\n== {step.title}\n   $ {shown}", flush=True)
    start = time.perf_counter()
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if step.capture else contextlib.nullcontext():
        code = command(step.argv)
    if step.capture:
        step.capture.write_text(out.getvalue())
    if code != 0:
        raise AudioclrError(
            f"demo step '{step.title}' failed (exit code {code})", hint=f"rerun it alone: {shown}"
        )
    return time.perf_counter() - start


def retrieval_labels(labels_csv: Path, out_csv: Path) -> Path:
    """``track_id,label`` rows for retrieval evaluation, ids relative to the audio folder.

    The demo's ``labels.csv`` lists ``audio/<class>/<file>.wav``; an embeddings folder of ``audio/``
    names the same track ``<class>/<file>.wav``.
    """
    with open(labels_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(out_csv, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["track_id", "label"])
        for row in rows:
            writer.writerow([Path(row["path"]).relative_to("audio").as_posix(), row["label"]])
    return out_csv


def demo_steps(out: Path, pretrain_minutes: float, config: str) -> list[Step]:
    """The journey as CLI steps writing under ``out``."""
    corpus, cache, run, enc = out / "corpus", out / "cache", out / "run", out / "encoder.pt"
    first_clip = corpus / "audio" / "flute" / "flute_000.wav"
    pretrain = [
        "pretrain",
        "--config",
        config,
        f"data.cache={cache}",
        f"run.dir={run}",
        f"trainer.max_minutes={pretrain_minutes}",
    ]
    if (run / "checkpoints" / "last.ckpt").is_file():
        pretrain.insert(1, "--resume")
    return [
        Step(
            "1/9 synthesize the demo corpus (labelled + a disjoint unlabelled part)",
            ["demo-data", str(corpus)],
            lambda: (corpus / "labels.csv").is_file() and (corpus / "unlabeled").is_dir(),
        ),
        Step(
            "2/9 prepare the clip cache of the unlabelled part (incremental)",
            ["prepare", str(corpus / "unlabeled"), str(cache)],
            lambda: False,
        ),
        Step(
            "3/9 preview the augmentation chain",
            ["augment-preview", str(first_clip), str(out / "preview"), "--views", "6"],
            lambda: any((out / "preview").glob("*.png")),
        ),
        Step("4/9 pretrain (SimCLR, melcnn)", pretrain, lambda: enc.is_file()),
        Step("5/9 export the encoder", ["export", str(run), str(enc)], lambda: enc.is_file()),
        Step(
            "6/9 probe with baselines and label fractions",
            [
                "probe",
                str(enc),
                str(corpus / "labels.csv"),
                str(out / "probe"),
                "task.fractions=[0.1,0.5,1.0]",
                "task.seeds=[0,1,2]",
                "task.heads=[linear,knn]",
            ],
            lambda: (out / "probe" / "report.json").is_file(),
        ),
        Step(
            "7/9 embed the catalogue (the labelled tracks: never seen in pretraining)",
            ["embed", str(enc), str(corpus / "audio"), str(out / "emb")],
            lambda: (out / "emb" / "embeddings.npy").is_file(),
        ),
        Step(
            "8/9 build the FAISS index",
            ["index", "build", str(out / "emb"), str(out / "index")],
            lambda: (out / "index").is_dir() and any((out / "index").iterdir()),
        ),
        Step(
            "9/9 evaluate retrieval (relevant = same class)",
            [
                "retrieval-eval",
                str(out / "index"),
                "--labels",
                str(out / "retrieval_labels.csv"),
                "-k",
                "5",
                "--json",
            ],
            lambda: (out / "retrieval.json").is_file(),
            capture=out / "retrieval.json",
        ),
    ]


def run_demo(
    out: Path,
    command: Command,
    pretrain_minutes: float = 3.0,
    config: str = "demo",
    queries: int = 3,
) -> int:
    """Run every step under ``out``, query a few tracks, print the summary; returns 0."""
    from audioclr.pipelines.summary import print_summary, query_examples

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for step in demo_steps(out, pretrain_minutes, config):
        if step.argv[0] == "retrieval-eval":
            retrieval_labels(out / "corpus" / "labels.csv", out / "retrieval_labels.csv")
        _run(step, command)
    examples = query_examples(out, queries, command)
    print_summary(out, examples, time.perf_counter() - start)
    return 0
