"""View generation: pair sampling and augmentation chains (CPU per-example and batched torch paths)."""
