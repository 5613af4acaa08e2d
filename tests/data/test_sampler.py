"""The sampler: deterministic given a seed, a permutation of the valid starts per epoch, exactly resumable."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from vla.data import ResumableSampler, build_dataloader, open_chunk_dataset

STARTS = np.array([0, 1, 2, 5, 6, 9, 10, 11, 12, 20, 21], dtype=np.int64)


def test_epochs_are_seeded_permutations_of_the_starts():
    a = ResumableSampler(STARTS, seed=3, infinite=True)
    stream = list(itertools.islice(iter(a), 3 * len(STARTS)))
    for e in range(3):
        epoch = stream[e * len(STARTS) : (e + 1) * len(STARTS)]
        assert sorted(epoch) == STARTS.tolist()
        assert epoch == a.order(e).tolist()
    assert stream == list(
        itertools.islice(iter(ResumableSampler(STARTS, seed=3, infinite=True)), len(stream))
    )
    assert stream[: len(STARTS)] != list(ResumableSampler(STARTS, seed=4))  # another seed, another order
    assert stream[: len(STARTS)] != stream[len(STARTS) : 2 * len(STARTS)]  # epochs differ
    assert list(ResumableSampler(STARTS, shuffle=False)) == STARTS.tolist()


def test_ddp_ranks_split_each_epoch():
    one = ResumableSampler(STARTS, seed=0).order(0)
    ranks = [ResumableSampler(STARTS, seed=0, num_replicas=2, rank=r).order(0) for r in (0, 1)]
    assert [len(r) for r in ranks] == [5, 5]
    # the union of the ranks' k-th batches (per-rank batch 2) is the 1-process k-th batch (global batch 4)
    for k in range(2):
        union = sorted(np.concatenate([r[2 * k : 2 * k + 2] for r in ranks]).tolist())
        assert union == sorted(one[4 * k : 4 * k + 4].tolist())


def test_position_counts_delivered_samples_and_state_checks():
    s = ResumableSampler(STARTS, seed=1)
    s.advance(4)
    assert s.state_dict()["epoch"] == 0 and s.state_dict()["offset"] == 4 and len(s) == 7
    assert list(s) == s.order(0)[4:].tolist()
    s.advance(7)  # the epoch is complete
    assert (s.epoch, s.offset) == (1, 0)
    s.advance(5)
    s.end_epoch()  # a dropped partial batch: move on
    assert (s.epoch, s.offset) == (2, 0)
    with pytest.raises(ValueError, match="does not match"):
        ResumableSampler(STARTS[:-1], seed=1).load_state_dict(s.state_dict())
    with pytest.raises(ValueError, match="does not match"):
        ResumableSampler(STARTS, seed=2).load_state_dict(s.state_dict())


def _take(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


@pytest.mark.timeout(120)  # workers sharing the parent's open decoders deadlock: fail, don't hang
@pytest.mark.parametrize("infinite,source", [(True, "png"), (False, "png"), (True, "video")])
def test_resume_mid_epoch_with_workers_gives_identical_batches(png_dataset, video_dataset, infinite, source):
    root = png_dataset[0] if source == "png" else video_dataset
    ds = open_chunk_dataset(root=root, chunk_len=4, tail="drop" if source == "png" else "pad")
    assert ds.num_samples in (22, 26)  # batches of 3 cross epoch ends
    ds[0]  # the parent opens its video files before forking: workers must not share those decoders
    kw = dict(batch_size=3, num_workers=2, seed=11, infinite=infinite)
    if infinite:
        reference = _take(build_dataloader(ds, **kw), 12)
    else:  # three epochs of 7 batches (the 22nd sample of each epoch is dropped)
        loader = build_dataloader(ds, **kw)
        reference = [b for _ in range(3) for b in loader]
        assert len(reference) == 21
    # a run that stops after 5 batches, its state saved while workers had prefetched further
    first = build_dataloader(ds, **kw)
    it = iter(first)
    for k in range(5):
        _same(next(it), reference[k])
    state = first.sampler.state_dict()
    assert state["offset"] == 15 and state["epoch"] == 0
    del it, first
    # a fresh process-like loader continues exactly where the consumer was
    resumed = build_dataloader(ds, **kw)
    resumed.sampler.load_state_dict(state)
    if infinite:
        rest = _take(resumed, 7)
    else:
        rest = [b for _ in range(3) for b in resumed][:7]
    for k, batch in enumerate(rest):
        _same(batch, reference[5 + k])


def test_build_dataloader_refuses_an_epoch_smaller_than_a_batch(png_dataset):
    root, _ = png_dataset
    ds = open_chunk_dataset(root=root, chunk_len=4)
    with pytest.raises(ValueError, match="fewer than batch_size=64"):
        build_dataloader(ds, batch_size=64, infinite=False)
