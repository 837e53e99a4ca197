"""Training batches as a pure function of the step: exact resume and distinct ranks.

``StepBatchSampler`` walks an endless stream of per-epoch permutations (seeded by
``(seed, epoch)``; with ``data.cache_shares``, of each cache's share of items:
``pool_counts``); the batch of step ``s`` on rank ``r`` is positions
``[(s * world + r) * batch, ... + batch)`` of that stream. So resuming at step ``s`` (or with
more workers) yields exactly the batches an uninterrupted run would have, with no sampler state
to save. Items are ``(step, epoch, index)``; ``EpochIndexed`` calls the dataset's
``set_epoch`` before each read (which also works inside DataLoader worker processes) and tags
each item with its step, so ``AugmentCollate`` can augment a batch in a worker with the
generator of that step (``data.augment_on=workers``, the CPU default: augmentation overlaps
the model step; CUDA training augments on the device).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from audioclr.augment.batched import BatchedAugment
from audioclr.ssl.views import make_views


def step_seed(seed: int, step: int, rank: int) -> int:
    """A distinct 63-bit seed per ``(seed, step, rank)`` (so resume redraws the same views)."""
    return ((seed * 1_000_003 + step) * 1_009 + rank) & (2**63 - 1)


def pool_counts(sizes: Sequence[int], shares: Sequence[float]) -> list[int]:
    """Items per epoch from each pool of ``sizes`` items so that pool ``c`` gives a
    ``shares[c] / sum(shares)`` part of the epoch, with no item twice in an epoch: the pool that
    limits the epoch gives all its items, the others a part of theirs.

    Example:
        >>> pool_counts([182, 180], [3, 1])      # 3/4 of the pairs from the first pool
        [182, 61]
    """
    total = float(sum(shares))
    parts = [w / total for w in shares]
    length = min(n / p for n, p in zip(sizes, parts, strict=True))
    return [min(n, max(1, round(p * length))) for n, p in zip(sizes, parts, strict=True)]


class StepBatchSampler(Sampler[list[tuple[int, int, int]]]):
    """Batches of ``(step, epoch, index)`` for steps ``start_step .. total_steps - 1``, one rank.

    An epoch is a seeded permutation of every item; with ``pools`` (the item indices of each
    pool, e.g. each clip cache of ``data.cache``) and ``shares``, it is a seeded permutation of
    ``pool_counts`` items of each pool, a fresh seeded subset of a pool per epoch where the pool
    gives only a part (``data.cache_shares``). With ``one_pool_per_batch``
    (``data.one_cache_per_batch``) every batch of a rank holds items of one pool only: the epoch
    is a seeded order of whole batches, each pool giving ``pool_counts`` of its whole batches
    (a fresh subset each epoch; the items that do not fill a batch wait for another epoch).

    Example:
        >>> pools = [[0, 1, 2, 3], [4, 5]]
        >>> s = StepBatchSampler(6, 2, 0, 0, 3, pools=pools, one_pool_per_batch=True)
        >>> [[i for _, _, i in s.batch(step)] for step in range(3)]
        [[3, 2], [4, 5], [0, 1]]
    """

    def __init__(
        self,
        n_items: int,
        batch_size: int,
        seed: int,
        start_step: int,
        total_steps: int,
        rank: int = 0,
        world_size: int = 1,
        pools: Sequence[Sequence[int]] | None = None,
        shares: Sequence[float] | None = None,
        one_pool_per_batch: bool = False,
    ) -> None:
        if n_items < 1:
            raise ValueError("StepBatchSampler needs at least one item")
        self.n, self.batch_size, self.seed = n_items, batch_size, seed
        self.start_step, self.total_steps = start_step, total_steps
        self.rank, self.world_size = rank, world_size
        self._perms: dict[int, torch.Tensor] = {}
        self.pools: list[torch.Tensor] | None = None
        self.block = batch_size if one_pool_per_batch else 1  # items that stay together
        if shares or one_pool_per_batch:
            if pools is None or (shares and len(pools) != len(shares)):
                raise ValueError("shares and one_pool_per_batch need one pool of items per share")
            sizes = [len(p) // self.block for p in pools]  # whole blocks in each pool
            if min(sizes) == 0:
                raise ValueError(f"every pool needs at least {self.block} item(s)")
            self.pools = [torch.as_tensor(list(p), dtype=torch.long) for p in pools]
            blocks = pool_counts(sizes, shares) if shares else sizes
            self.counts = [k * self.block for k in blocks]
            self.n = sum(self.counts)  # the epoch's length

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            if self.pools is None:
                self._perms = {epoch: torch.randperm(self.n, generator=g)}
            else:
                chosen = [
                    pool[torch.randperm(len(pool), generator=g)[:k]].view(-1, self.block)
                    for pool, k in zip(self.pools, self.counts, strict=True)
                ]
                blocks = torch.cat(chosen)  # (blocks, block): one pool per row
                order = torch.randperm(len(blocks), generator=g)
                self._perms = {epoch: blocks[order].reshape(-1)}
        return self._perms[epoch]

    def batch(self, step: int) -> list[tuple[int, int, int]]:
        """The ``(step, epoch, index)`` items of ``step`` on this rank."""
        first = (step * self.world_size + self.rank) * self.batch_size
        out = []
        for pos in range(first, first + self.batch_size):
            epoch = pos // self.n
            out.append((step, epoch, int(self._perm(epoch)[pos % self.n])))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for step in range(self.start_step, self.total_steps):
            yield self.batch(step)

    def __len__(self) -> int:
        return self.total_steps  # what Lightning counts per epoch; iteration starts at start_step


class EpochIndexed(Dataset):
    """Wraps a dataset with ``set_epoch``: item ``(step, epoch, i)`` -> ``(*dataset[i], step)``
    read at that epoch."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int, int]) -> Any:
        step, epoch, i = item
        if getattr(self, "_epoch", None) != epoch:
            self.dataset.set_epoch(epoch)
            self._epoch = epoch
        return (*self.dataset[i], step)


class AugmentCollate:
    """Stack ``(view_a, view_b, idx, step)`` items into ``(a, b, idx, augmented)``; with
    ``augment``, apply it to the batch here (in a worker) with the generator of the step, and
    with ``params`` append what each view received: ``(a, b, idx, True, params)``, ``params``
    ``(2 * batch, P)`` (view a rows, then view b; ``audioclr.augment.params``). With
    ``group_ids`` (metadata positives: items ``(view_a, view_b, idx, ids, step)``) the batch is
    always ``(a, b, idx, augmented, params or None, ids)``, ``ids`` ``(batch, width)`` int64."""

    def __init__(
        self,
        augment: BatchedAugment | None,
        seed: int,
        rank: int,
        params: bool = False,
        groups: tuple[str, ...] = (),
        group_ids: bool = False,
    ) -> None:
        self.augment, self.seed, self.rank, self.params = augment, seed, rank, params
        self.groups = groups  # LooC key views (ssl/views.py): appended to view b's rows
        self.group_ids = group_ids

    def __call__(self, items: list[tuple]) -> tuple:
        a = torch.stack([it[0] for it in items])
        b = torch.stack([it[1] for it in items])
        idx = torch.tensor([int(it[2]) for it in items])
        if self.group_ids and len(items[0]) != 5:
            raise ValueError(
                "metadata positives need items (view_a, view_b, idx, group_ids, step): "
                "a PairDataset built with groups"
            )
        ids = torch.stack([it[3] for it in items]) if self.group_ids else None
        if self.augment is None:
            return (a, b, idx, False, None, ids) if self.group_ids else (a, b, idx, False)
        g = torch.Generator().manual_seed(step_seed(self.seed, int(items[0][-1]), self.rank))
        with torch.no_grad():
            x, params = make_views(self.augment, a.float(), b.float(), g, self.groups)
        a, b = x[: len(items)], x[len(items) :]
        if self.group_ids:
            return a, b, idx, True, params if self.params else None, ids
        return (a, b, idx, True, params) if self.params else (a, b, idx, True)


def step_loader(
    dataset: Any,
    sampler: StepBatchSampler,
    num_workers: int,
    pin_memory: bool = False,
    collate: AugmentCollate | None = None,
) -> DataLoader:
    """A DataLoader over ``EpochIndexed(dataset)`` driven by ``sampler``."""
    collate = collate or AugmentCollate(None, 0, 0)
    return DataLoader(
        EpochIndexed(dataset),
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
    )
