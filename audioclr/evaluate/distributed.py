"""Embedding over several processes (``torchrun``): who am I, and gathering results on every rank.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the first call joins the process
group from the variables torchrun sets (``env://``). Results are plain numpy objects gathered on
the CPU, so the group uses gloo whatever the device: the encoder runs on each rank's own GPU
(``cuda:LOCAL_RANK``) and only finished vectors travel. A group someone else started (Lightning)
is reused as it is. Outside torchrun every function is the one-process identity.

Example:
    $ torchrun --nproc_per_node 2 -m audioclr embed enc.pt music/ emb/
    >>> rank, world = rank_and_world()
    >>> parts = gather({c: f"chunk {c}" for c in range(rank, 8, world)})  # every rank: a list
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _group() -> bool:
    """Join torchrun's process group if launched under it; ``False`` in a plain process."""
    import torch
    import torch.distributed as dist

    if not dist.is_available() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="gloo", init_method="env://")
    return True


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)``: ``(0, 1)`` outside torchrun."""
    if not _group():
        return 0, 1
    import torch.distributed as dist

    return dist.get_rank(), dist.get_world_size()


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` outside torchrun)."""
    if not _group():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def from_rank0(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` outside torchrun)."""
    return gather(obj)[0]


def barrier() -> None:
    """Wait until every rank gets here (nothing outside torchrun)."""
    if _group():
        import torch.distributed as dist

        dist.barrier()


def is_main() -> bool:
    """Whether this process writes the outputs (rank 0, or no torchrun)."""
    return rank_and_world()[0] == 0


@contextlib.contextmanager
def rank0_lock(folder: str | Path, command: str) -> Iterator[None]:
    """Rank 0 holds ``folder``'s writer lock (``audioclr/lock.py``); when another writer holds
    it, every rank raises the same error together (no rank left waiting in a collective)."""
    from audioclr.errors import AudioclrError
    from audioclr.lock import folder_lock

    with contextlib.ExitStack() as stack:
        failure = None
        if is_main():
            try:
                stack.enter_context(folder_lock(folder, command))
            except AudioclrError as exc:
                failure = (str(exc), exc.hint)
        failure = from_rank0(failure)
        if failure is not None:
            raise AudioclrError(*failure)
        yield
