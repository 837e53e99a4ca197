"""View generation: pair sampling and augmentation chains (per-example CPU and batched torch)."""
