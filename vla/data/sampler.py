"""A deterministic, resumable sampler over the valid start frames of a `ChunkDataset`.

Epoch e visits `starts` in the order `rng([seed, e]).permutation(n)` (or in stored order when shuffle is off);
with `num_replicas` > 1 (DDP), rank r takes every `num_replicas`-th entry of that order starting at r, cut to
`n // num_replicas` so all ranks see equally many samples (the union of the ranks' k-th batches is the
1-process run's k-th batch of the same global size). `infinite=True` runs epoch after epoch.

The position (epoch, offset) counts samples *delivered to the consumer*, not samples handed to DataLoader
workers (which prefetch ahead): `ResumableDataLoader` (vla.data.dataloader) calls `advance(len(batch))` as each
batch reaches the training loop. So `state_dict()` saved after step k and `load_state_dict()` in a fresh run
resume exactly with the batch step k+1 would have seen, whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

STATE_VERSION = 1


class ResumableSampler(Sampler[int]):
    def __init__(
        self,
        starts: Sequence[int] | np.ndarray,
        *,
        seed: int = 0,
        shuffle: bool = True,
        infinite: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        self.starts = np.asarray(starts, dtype=np.int64)
        if self.starts.ndim != 1 or len(self.starts) == 0:
            raise ValueError("the sampler needs a non-empty 1-D list of start indices")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got rank={rank}, num_replicas={num_replicas}")
        if len(self.starts) < num_replicas:
            raise ValueError(f"{len(self.starts)} samples cannot be split over {num_replicas} replicas")
        self.seed, self.shuffle, self.infinite = int(seed), bool(shuffle), bool(infinite)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.epoch = 0
        self.offset = 0  # samples of the current epoch already delivered to the consumer

    @property
    def epoch_len(self) -> int:
        """Samples per epoch on this rank."""
        return len(self.starts) // self.num_replicas

    def order(self, epoch: int) -> np.ndarray:
        """The start indices this rank visits in `epoch`, in order."""
        n = len(self.starts)
        perm = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        return self.starts[perm[self.rank :: self.num_replicas][: self.epoch_len]]

    def __iter__(self) -> Iterator[int]:
        epoch, offset = self.epoch, self.offset
        while True:
            for idx in self.order(epoch)[offset:]:
                yield int(idx)
            if not self.infinite:
                return
            epoch, offset = epoch + 1, 0

    def __len__(self) -> int:
        """Samples left in the current epoch (an infinite sampler keeps going after them)."""
        return self.epoch_len - self.offset

    # -- position bookkeeping (called by the consumer side) --
    def advance(self, n: int) -> None:
        """Record that `n` more samples reached the consumer."""
        self.offset += int(n)
        while self.offset >= self.epoch_len:
            self.offset -= self.epoch_len
            self.epoch += 1

    def end_epoch(self) -> None:
        """The consumer's pass over the epoch ended early (e.g. the dropped last partial batch): next epoch."""
        if self.offset:
            self.epoch, self.offset = self.epoch + 1, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.offset = int(epoch), 0

    def state_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "epoch": self.epoch,
            "offset": self.offset,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "num_samples": len(self.starts),
            "num_replicas": self.num_replicas,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved position; refuses a state saved for different data or sampling settings."""
        want = {
            "seed": self.seed,
            "shuffle": self.shuffle,
            "num_samples": len(self.starts),
            "num_replicas": self.num_replicas,
        }
        diff = {k: (state.get(k), v) for k, v in want.items() if state.get(k) != v}
        if diff:
            raise ValueError(
                f"sampler state does not match this dataset/sampler (saved, now): {diff}; "
                "resume with the same dataset, chunk_len, seed and world size"
            )
        epoch, offset = int(state["epoch"]), int(state["offset"])
        if epoch < 0 or not 0 <= offset < self.epoch_len:
            raise ValueError(f"sampler state has an invalid position epoch={epoch} offset={offset}")
        self.epoch, self.offset = epoch, offset
