"""The fast reader gives lerobot's items exactly: chunks, pads, state, task, and every pixel (PNG and video)."""

from __future__ import annotations

import pytest
import torch

from vla.data import open_chunk_dataset


def _assert_same(fast, ref, idx):
    a, b = fast[idx], ref[idx]
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, (idx, key)
            assert torch.equal(a[key], b[key]), (idx, key)
        else:
            assert a[key] == b[key], (idx, key)


@pytest.mark.parametrize("source", ["png", "video"])
def test_fast_reader_matches_lerobot_items(png_dataset, video_dataset, source):
    root = png_dataset[0] if source == "png" else video_dataset
    fast = open_chunk_dataset(root=root, chunk_len=4, tail="pad")
    ref = open_chunk_dataset(root=root, chunk_len=4, tail="pad", reader="lerobot")
    assert fast.valid_starts.tolist() == ref.valid_starts.tolist()
    order = list(range(len(fast)))
    for idx in order[::-1] + order[::3]:  # backwards and jumping: seeks in both directions
        _assert_same(fast, ref, idx)


def test_fast_reader_with_an_episode_subset(video_dataset):
    fast = open_chunk_dataset(root=video_dataset, chunk_len=3, episodes=[0, 2])
    ref = open_chunk_dataset(root=video_dataset, chunk_len=3, episodes=[0, 2], reader="lerobot")
    assert len(fast) == 21 and fast.valid_starts.tolist() == list(range(10)) + list(range(12, 19))
    for idx in range(len(fast)):
        _assert_same(fast, ref, idx)
    assert int(fast[12]["episode_index"]) == 2
