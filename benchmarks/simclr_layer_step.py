"""Model-only SimCLR step time: ``simclr.layer=last`` against ``all``, like for like.

Both legs build the suite's encoder (``simclr_melcnn``, 1.5 s crops) and train on the same
random batch (32 clips x 2 views) under bf16 autocast, in one process with the same threads;
the legs alternate for 4 rounds of 12 steps (the first 2 of each round untimed), so a load
spike hits both. Prints the CPU model and each leg's median step time.

    .venv/bin/python benchmarks/simclr_layer_step.py
"""

from __future__ import annotations

import statistics
import time

import torch

from audioclr.config import load_config
from audioclr.machine import cpu_model
from audioclr.ssl.config import PretrainConfig
from audioclr.ssl.encoders import build_encoder
from audioclr.ssl.objectives import build_objective

SAMPLES = 33075  # the suite's crop: 1.5 s at 22,050 Hz
ROUNDS, STEPS, UNTIMED = 4, 12, 2


def leg(layer: str) -> tuple:
    overrides = [f"simclr.layer={layer}", f"model.encoder_kwargs.input_samples={SAMPLES}"]
    cfg = load_config(PretrainConfig, "configs/pretrain/simclr_melcnn.yaml", overrides)
    enc = build_encoder("melcnn", 22050, **cfg.model.encoder_kwargs)
    obj = build_objective("simclr", enc, cfg.simclr)
    opt = torch.optim.AdamW([*enc.parameters(), *obj.parameters()], lr=1e-3)
    return enc, obj, opt


def main() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, SAMPLES)
    legs = {layer: leg(layer) for layer in ("last", "all")}
    times: dict[str, list[float]] = {k: [] for k in legs}
    for _ in range(ROUNDS):
        for layer, (enc, obj, opt) in legs.items():
            for i in range(STEPS):
                t = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss, _ = obj.loss(enc, x, None, torch.Generator())
                opt.zero_grad()
                loss.backward()
                opt.step()
                if i >= UNTIMED:
                    times[layer].append(time.perf_counter() - t)
    print(f"cpu: {cpu_model()}, torch threads: {torch.get_num_threads()}")
    for layer, v in times.items():
        ms = statistics.median(v) * 1000
        print(f"simclr.layer={layer}: median {ms:.0f} ms/step over {len(v)} steps")
    ratio = statistics.median(times["all"]) / statistics.median(times["last"])
    print(f"all / last = {ratio:.3f}")


if __name__ == "__main__":
    main()
