"""An endless, resumable stream of per-rank index batches over any index sampler.

    batches = ResumableBatches(base_sampler, global_batch=64, micro_batch=32, rank=r, world_size=2)
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=2, ...)

Each epoch the base sampler (e.g. the data package's resumable sampler, or a seeded `RandomSampler`)
yields an order; it is cut into global batches of `global_batch` indices (a short tail is dropped) and
each global batch into micro-batches of `micro_batch`: rank r takes the micro-batches r, r + W, r + 2W, ...
So one process and W processes see exactly the same global batch at every update.

The DataLoader pulls batches ahead of the trainer (prefetching, worker queues), so this object's own
iteration position is NOT what a checkpoint must store. The trainer counts the micro-batches it actually
consumed and calls `state_at(consumed)`; `load_state_dict` then restarts exactly there: the base sampler's
state at the start of that epoch is restored, the epoch is re-drawn identically and the consumed part is
skipped by index (no data is loaded for it).
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Sampler


class ResumableBatches(Sampler[list[int]]):
    def __init__(self, base, global_batch: int, micro_batch: int, rank: int = 0, world_size: int = 1) -> None:
        if global_batch % (micro_batch * world_size):
            raise ValueError(
                f"global batch {global_batch} is not a multiple of micro_batch×world_size = {micro_batch}×{world_size}"
            )
        if getattr(base, "infinite", False):
            raise ValueError("ResumableBatches needs a base sampler that ends each epoch (infinite=False)")
        self.base = base
        self.global_batch = global_batch
        self.micro_batch = micro_batch
        self.rank = rank
        self.world_size = world_size
        self.per_rank = global_batch // (micro_batch * world_size)  # micro-batches per update and rank
        self._start_epoch = 0
        self._start_micro = 0  # this rank's micro-batches to skip in the start epoch
        self._resume_base_state = None
        self._resume_pending = False
        self._epoch_state: dict[int, object] = {}  # base sampler state at the start of each drawn epoch
        self._epoch_micro: dict[int, int] = {}  # this rank's micro-batches in each drawn epoch

    def __len__(
        self,
    ) -> int:  # endless; DataLoader only needs this for len(loader), which the trainer never asks
        raise TypeError("ResumableBatches is endless")

    def _draw(self, epoch: int) -> list[int]:
        stateful = hasattr(self.base, "state_dict") and hasattr(self.base, "load_state_dict")
        if self._resume_pending and epoch == self._start_epoch:
            if stateful and self._resume_base_state is not None:
                self.base.load_state_dict(self._resume_base_state)  # then set_epoch, as in the original run
            self._resume_pending = False
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        self._epoch_state[epoch] = self.base.state_dict() if stateful else None
        order = [int(i) for i in iter(self.base)]
        # Where the next epoch starts (before its set_epoch): valid even if the loader never draws it.
        self._epoch_state[epoch + 1] = self.base.state_dict() if stateful else None
        for old in [e for e in self._epoch_state if e < epoch - 2]:
            self._epoch_state.pop(old, None)
        return order

    def __iter__(self) -> Iterator[list[int]]:
        epoch, skip = self._start_epoch, self._start_micro
        while True:
            order = self._draw(epoch)
            n_global = len(order) // self.global_batch
            if n_global == 0:
                raise ValueError(
                    f"the dataset has {len(order)} samples, fewer than one global batch of {self.global_batch}"
                )
            mine = []
            for g in range(n_global):
                chunk = order[g * self.global_batch : (g + 1) * self.global_batch]
                for m in range(self.per_rank):
                    j = m * self.world_size + self.rank
                    mine.append(chunk[j * self.micro_batch : (j + 1) * self.micro_batch])
            self._epoch_micro[epoch] = len(mine)
            yield from mine[skip:]
            epoch, skip = epoch + 1, 0

    def state_at(self, consumed: int) -> dict:
        """Resume state after this rank consumed `consumed` micro-batches since the last (re)start."""
        epoch, micro = self._start_epoch, self._start_micro + consumed
        while epoch in self._epoch_micro and micro >= self._epoch_micro[epoch]:
            micro -= self._epoch_micro[epoch]
            epoch += 1
        if epoch not in self._epoch_state:
            if consumed == 0:  # nothing drawn since the (re)start: the state we were started from
                return {
                    "epoch": epoch,
                    "global": micro // self.per_rank,
                    "base_state": self._resume_base_state,
                }
            raise RuntimeError(f"no sampler state recorded for epoch {epoch}")
        if micro % self.per_rank:
            raise RuntimeError(f"sampler state asked for mid-update ({micro} micro-batches into the epoch)")
        # In global batches, so a run may resume with another number of processes.
        return {"epoch": epoch, "global": micro // self.per_rank, "base_state": self._epoch_state[epoch]}

    def load_state_dict(self, state: dict) -> None:
        self._start_epoch = int(state["epoch"])
        self._start_micro = int(state["global"]) * self.per_rank
        self._resume_base_state = state.get("base_state")
        self._resume_pending = True
        self._epoch_state.clear()
        self._epoch_micro.clear()


class EpochShuffle(Sampler[int]):
    """A random order per epoch drawn from (seed, epoch) only: never touches the global RNG, needs no state."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        import torch

        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=gen).tolist())
