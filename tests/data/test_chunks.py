"""Training samples: action chunks, padding at episode ends, valid starts, exact uint8 images, the batch format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from dataset_factory import LENGTHS, write_dataset

from vla.data import (
    DatasetError,
    DatasetNotFoundError,
    build_dataloader,
    collate_batch,
    open_chunk_dataset,
    to_uint8_hwc,
    valid_start_positions,
)
from vla.data.layouts import ACTION, IMAGE, STATE, WRIST


def test_valid_starts_drop_the_last_chunk_len_minus_1_frames():
    lengths = [10, 3, 8, 9]
    ep = np.repeat(np.arange(4), lengths)
    frame = np.concatenate([np.arange(n) for n in lengths])
    starts = valid_start_positions(ep, frame, chunk_len=8)
    # episode 0 (rows 0-9): frames 0..2; episode 1 (3 frames): none; episode 2 (rows 13-20): frame 0;
    # episode 3 (rows 21-29): frames 0..1
    assert starts.tolist() == [0, 1, 2, 13, 21, 22]
    assert len(starts) == sum(max(0, n - 8 + 1) for n in lengths)
    assert valid_start_positions(ep, frame, chunk_len=1).tolist() == list(range(sum(lengths)))
    assert valid_start_positions(ep, frame, chunk_len=8, tail="pad").tolist() == list(range(sum(lengths)))
    with pytest.raises(ValueError, match="tail must be one of"):
        valid_start_positions(ep, frame, 8, tail="clamp")


def test_chunks_and_padding_at_episode_ends(png_dataset):
    root, demos = png_dataset
    ds = open_chunk_dataset(root=root, chunk_len=4)
    offsets = np.cumsum([0, *LENGTHS])
    want = [offsets[e] + t for e, n in enumerate(LENGTHS) for t in range(n - 3)]
    assert ds.valid_starts.tolist() == want
    assert ds.num_samples == sum(n - 3 for n in LENGTHS) and len(ds) == sum(LENGTHS)

    last_start = offsets[0] + LENGTHS[0] - 4  # frame 8 of episode 0: chunk = frames 8..11, no padding
    item = ds[last_start]
    assert item["action_is_pad"].tolist() == [False] * 4
    np.testing.assert_array_equal(item[ACTION].numpy(), demos[0].frames[ACTION][8:12])
    np.testing.assert_array_equal(item[STATE].numpy(), demos[0].frames[STATE][8])

    tail = ds[offsets[0] + LENGTHS[0] - 2]  # frame 10 of 12: not a start; the chunk runs 2 past the end
    assert tail["action_is_pad"].tolist() == [False, False, True, True]
    np.testing.assert_array_equal(tail[ACTION][:2].numpy(), demos[0].frames[ACTION][10:12])
    np.testing.assert_array_equal(tail[ACTION][2:].numpy(), demos[0].frames[ACTION][[11, 11]])  # edge repeat

    first_of_next = ds[offsets[2]]  # episode 2 frame 0: the chunk never reaches back into episode 1
    np.testing.assert_array_equal(first_of_next[ACTION].numpy(), demos[2].frames[ACTION][0:4])
    assert first_of_next["task"] == demos[2].task and int(first_of_next["episode_index"]) == 2


def test_pad_tail_makes_every_frame_a_start(png_dataset):
    root, _ = png_dataset
    ds = open_chunk_dataset(root=root, chunk_len=4, tail="pad")
    assert ds.valid_starts.tolist() == list(range(sum(LENGTHS)))
    assert ds[LENGTHS[0] - 1]["action_is_pad"].tolist() == [False, True, True, True]


def test_images_are_exact_uint8_hwc(png_dataset):
    root, demos = png_dataset
    ds = open_chunk_dataset(root=root, chunk_len=2)
    for idx, (e, t) in {0: (0, 0), 13: (1, 1), 20: (2, 5)}.items():
        item = ds[idx]
        for key in (IMAGE, WRIST):
            assert item[key].dtype == torch.uint8 and tuple(item[key].shape) == demos[e].frames[key][t].shape
            np.testing.assert_array_equal(item[key].numpy(), demos[e].frames[key][t])


def test_to_uint8_hwc_inverts_lerobots_float_chw_exactly():
    values = torch.arange(256, dtype=torch.uint8)
    chw = values.reshape(1, 16, 16).expand(3, 16, 16)
    as_float = chw.to(torch.float32) / 255.0  # what lerobot's transforms produce
    back = to_uint8_hwc(as_float)
    assert back.dtype == torch.uint8 and back.shape == (16, 16, 3)
    assert torch.equal(back, chw.permute(1, 2, 0))
    assert torch.equal(to_uint8_hwc(chw.contiguous()), chw.permute(1, 2, 0))
    # other float paths (a multiply by 1/255, a decoder's rounding noise) land within 1e-4 of k/255
    for noisy in (chw.to(torch.float32) * (1 / 255), as_float - 1e-5, as_float + 1e-5):
        assert torch.equal(to_uint8_hwc(noisy.clamp(0, 1)), chw.permute(1, 2, 0))


def test_collate_gives_the_contract_batch(png_dataset):
    root, demos = png_dataset
    ds = open_chunk_dataset(root=root, chunk_len=8)
    batch = collate_batch([ds[i] for i in ds.valid_starts[:3]])
    assert batch[IMAGE].dtype == torch.uint8 and tuple(batch[IMAGE].shape) == (3, 16, 16, 3)
    assert batch[WRIST].dtype == torch.uint8 and tuple(batch[WRIST].shape) == (3, 16, 16, 3)
    assert batch[STATE].dtype == torch.float32 and tuple(batch[STATE].shape) == (3, 8)
    assert batch[ACTION].dtype == torch.float32 and tuple(batch[ACTION].shape) == (3, 8, 7)
    assert batch["action_is_pad"].dtype == torch.bool and tuple(batch["action_is_pad"].shape) == (3, 8)
    assert batch["task"] == [demos[0].task] * 3 and isinstance(batch["task"], list)
    loader = build_dataloader(ds, batch_size=2, num_workers=0, seed=1)
    assert set(next(iter(loader))) == set(batch)


def test_wrist_image_layout(tmp_path):
    demos = write_dataset(tmp_path / "community", [9, 8], layout="community")
    info = json.loads((tmp_path / "community" / "meta" / "info.json").read_text())
    assert "observation.images.wrist_image" in info["features"] and WRIST not in info["features"]
    ds = open_chunk_dataset(root=tmp_path / "community", chunk_len=8)
    assert ds.libero.layout.name == "community"
    assert ds.valid_starts.tolist() == [0, 1, 9]
    item = ds[1]
    np.testing.assert_array_equal(item[WRIST].numpy(), demos[0].frames[WRIST][1])
    np.testing.assert_array_equal(item[ACTION].numpy(), demos[0].frames[ACTION][1:9])


def test_missing_and_malformed_datasets_name_the_path(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist") as e:
        open_chunk_dataset(root=tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "nope").exists()  # lerobot would create it; we stop before

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a LeRobot dataset"):
        open_chunk_dataset(root=tmp_path / "empty")

    bad = tmp_path / "bad"
    (bad / "meta").mkdir(parents=True)
    (bad / "meta" / "info.json").write_text("{not json")
    with pytest.raises(DatasetError, match="info.json is malformed"):
        open_chunk_dataset(root=bad)

    (bad / "meta" / "info.json").write_text(
        json.dumps({"codebase_version": "v2.1", "features": {}, "fps": 10})
    )
    with pytest.raises(DatasetError, match="is LeRobot format v2.1; .* convert it"):
        open_chunk_dataset(root=bad)


def test_wrong_state_dim_and_too_short_episodes(tmp_path):
    write_dataset(tmp_path / "s7", [9], state_dim=7)
    with pytest.raises(DatasetError, match=r"shape \(7,\), expected \(8,\)"):
        open_chunk_dataset(root=tmp_path / "s7")
    write_dataset(tmp_path / "short", [3, 4])
    with pytest.raises(DatasetError, match="no episode of at least chunk_len=8"):
        open_chunk_dataset(root=tmp_path / "short", chunk_len=8)
    assert open_chunk_dataset(root=tmp_path / "short", chunk_len=8, tail="pad").num_samples == 7
