"""Training batches as a pure function of the step: exact resume and distinct ranks.

``StepBatchSampler`` walks an endless stream of per-epoch permutations (seeded by
``(seed, epoch)``); the batch of step ``s`` on rank ``r`` is positions
``[(s * world + r) * batch, ... + batch)`` of that stream. So resuming at step ``s`` (or with
more workers) yields exactly the batches an uninterrupted run would have, with no sampler state
to save. Items are ``(epoch, index)`` pairs; ``EpochIndexed`` calls the dataset's
``set_epoch`` before each read, which also works inside DataLoader worker processes.

Example:
    >>> sampler = StepBatchSampler(10, batch_size=4, seed=0, start_step=0, total_steps=3)
    >>> [len(b) for b in sampler]
    [4, 4, 4]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(epoch, index)`` for steps ``start_step .. total_steps - 1`` of one rank."""

    def __init__(self, n_items: int, batch_size: int, seed: int, start_step: int,
                 total_steps: int, rank: int = 0, world_size: int = 1) -> None:
        if n_items < 1:
            raise ValueError("StepBatchSampler needs at least one item")
        self.n, self.batch_size, self.seed = n_items, batch_size, seed
        self.start_step, self.total_steps = start_step, total_steps
        self.rank, self.world_size = rank, world_size
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(self.n, generator=g)}
        return self._perms[epoch]

    def batch(self, step: int) -> list[tuple[int, int]]:
        """The ``(epoch, index)`` items of ``step`` on this rank."""
        first = (step * self.world_size + self.rank) * self.batch_size
        out = []
        for pos in range(first, first + self.batch_size):
            epoch = pos // self.n
            out.append((epoch, int(self._perm(epoch)[pos % self.n])))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.total_steps):
            yield self.batch(step)

    def __len__(self) -> int:
        return self.total_steps  # what Lightning counts per epoch; iteration starts at start_step


class EpochIndexed(Dataset):
    """Wraps a dataset with ``set_epoch``: item ``(epoch, i)`` -> ``dataset[i]`` at that epoch."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        epoch, i = item
        if getattr(self, "_epoch", None) != epoch:
            self.dataset.set_epoch(epoch)
            self._epoch = epoch
        return self.dataset[i]


def step_loader(dataset: Any, sampler: StepBatchSampler, num_workers: int,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader over ``EpochIndexed(dataset)`` driven by ``sampler``."""
    return DataLoader(EpochIndexed(dataset), batch_sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, persistent_workers=False,
                      prefetch_factor=4 if num_workers > 0 else None)
