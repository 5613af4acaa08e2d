"""Batches in the contract's training format, with multi-worker loading and an exactly resumable position.

ds = open_chunk_dataset(root=..., chunk_len=8)
loader = build_dataloader(ds, batch_size=32, num_workers=2, seed=7)      # infinite by default
it = iter(loader)
batch = next(it)   # observation.images.image / image2: uint8 (B,H,W,3); observation.state: float32 (B,8);
                   # action: float32 (B,T,7); action_is_pad: bool (B,T); task: list[str];
                   # index, episode_index: int64 (B,)
ckpt["sampler"] = loader.sampler.state_dict()        # position = batches the loop has received
...
loader.sampler.load_state_dict(ckpt["sampler"])      # in the resumed run, before iter(loader)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from vla.data.chunks import ChunkDataset
from vla.data.sampler import ResumableSampler


def collate_batch(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples: tensors along a new batch dim (images stay uint8), strings into a list."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for key, first in items[0].items():
        values = [item[key] for item in items]
        if isinstance(first, torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(first, str):
            out[key] = [str(v) for v in values]
        else:
            out[key] = torch.as_tensor(values)
    return out


def batch_size_of(batch: dict[str, Any]) -> int:
    return len(batch["task"])


class ResumableDataLoader(DataLoader):
    """A DataLoader over a `ResumableSampler` that moves the sampler's position as batches are delivered."""

    sampler: ResumableSampler

    def __iter__(self) -> Iterator[dict[str, Any]]:
        sampler = self.sampler
        inner = super().__iter__()
        for batch in inner:
            sampler.advance(batch_size_of(batch))
            yield batch
        sampler.end_epoch()  # only reached by a finite sampler; a no-op if the epoch ended exactly

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


def _worker_init(worker_id: int) -> None:
    # Each worker decodes video single-threaded: workers are the parallelism, and on few cores more threads
    # per worker only contend with the training process.
    del worker_id
    torch.set_num_threads(1)


def build_dataloader(
    dataset: ChunkDataset,
    *,
    batch_size: int = 32,
    num_workers: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    infinite: bool = True,
    drop_last: bool = True,
    num_replicas: int = 1,
    rank: int = 0,
    prefetch_factor: int | None = 2,
    persistent_workers: bool | None = None,
    pin_memory: bool = False,
    multiprocessing_context: str | None = None,
) -> ResumableDataLoader:
    """A resumable loader over `dataset.valid_starts`.

    `infinite=True` (default) streams epoch after epoch (step-based training: `it = iter(loader)`, `next(it)`);
    `infinite=False` ends each epoch (`for batch in loader`), dropping the last partial batch if `drop_last`.
    `num_replicas`/`rank` split each epoch across DDP ranks (see `ResumableSampler`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    sampler = ResumableSampler(
        dataset.valid_starts,
        seed=seed,
        shuffle=shuffle,
        infinite=infinite,
        num_replicas=num_replicas,
        rank=rank,
    )
    if drop_last and not infinite and sampler.epoch_len < batch_size:
        raise ValueError(
            f"dataset {getattr(dataset, 'name', '')} has {sampler.epoch_len} samples per epoch (per rank), "
            f"fewer than batch_size={batch_size}: every batch would be dropped"
        )
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["prefetch_factor"] = prefetch_factor
        kwargs["persistent_workers"] = bool(persistent_workers) if persistent_workers is not None else False
        kwargs["worker_init_fn"] = _worker_init
        if multiprocessing_context is not None:
            kwargs["multiprocessing_context"] = multiprocessing_context
    return ResumableDataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_batch,
        drop_last=drop_last,
        pin_memory=pin_memory,
        **kwargs,
    )
