"""Checkpoint directories: bit-identical round trip, clear refusals, TorchPolicy behind the protocol."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tiny_models import observation, tiny_config, tiny_processor

from vla.models.checkpoint import CheckpointError, from_pretrained, load_policy_dir, save_pretrained
from vla.models.policy import TorchPolicy
from vla.models.vla_adapter import VLAAdapter
from vla.protocol import Policy, ProtocolError


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    model = VLAAdapter(tiny_config())
    with torch.no_grad():  # make every tensor non-trivial, so a skipped tensor would show
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    processor = tiny_processor(model.config)
    save_pretrained(tmp_path / "ckpt", model, processor)
    return tmp_path / "ckpt", model, processor


def _obs(seed=0):
    obs = observation(2, seed=seed)
    return obs


def test_round_trip_gives_bit_identical_outputs(ckpt):
    path, model, processor = ckpt
    loaded, loaded_processor = from_pretrained(path)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    inputs = processor(_obs(), train=False)
    assert torch.equal(loaded_processor(_obs(), train=False)["input_ids"], inputs["input_ids"])
    assert torch.equal(model.eval().sample_actions(inputs), loaded.sample_actions(inputs))
    policy = load_policy_dir(path)
    assert isinstance(policy, Policy)
    expected = TorchPolicy(model, processor).predict_chunk(_obs())
    np.testing.assert_array_equal(policy.predict_chunk(_obs()), expected)
    assert loaded_processor.cfg == processor.cfg and loaded.config == model.config


def test_policy_spec_and_chunk(ckpt):
    policy = load_policy_dir(ckpt[0])
    spec = policy.spec
    assert (spec.action_space, spec.gripper_convention) == ("libero_osc_delta", "libero_raw")
    assert (spec.chunk_len, spec.n_action_steps, spec.action_dim, spec.state_dim) == (8, 8, 7, 8)
    assert spec.image_shapes == {
        "observation.images.image": (48, 48, 3),
        "observation.images.image2": (48, 48, 3),
    }
    chunk = policy.predict_chunk(_obs())
    assert chunk.shape == (2, 8, 7) and chunk.dtype == np.float32
    assert set(np.unique(chunk[..., 6])) <= {-1.0, 1.0}


def test_load_policy_resolves_a_checkpoint_directory(ckpt):
    from vla.policies import load_policy

    policy = load_policy(str(ckpt[0]))
    assert policy.predict_chunk(_obs()).shape == (2, 8, 7)


@pytest.mark.parametrize(
    "bad",
    [
        {"observation.state": np.zeros((2, 7), np.float32)},
        {"observation.images.image": np.zeros((2, 32, 32, 3), np.uint8)},
        {"observation.images.image2": np.zeros((2, 48, 48, 3), np.float32)},
        {"task": "one string"},
    ],
)
def test_observations_not_matching_the_spec_raise_protocol_error(ckpt, bad):
    policy = load_policy_dir(ckpt[0])
    with pytest.raises(ProtocolError):
        policy.predict_chunk({**_obs(), **bad})
    obs = _obs()
    del obs["observation.images.image2"]
    with pytest.raises(ProtocolError, match="missing"):
        policy.predict_chunk(obs)


@pytest.mark.parametrize(
    "missing", ["config.json", "model.safetensors", "stats.json", "tokenizer/tokenizer.json"]
)
def test_missing_file(ckpt, missing):
    (ckpt[0] / missing).unlink()
    with pytest.raises(CheckpointError, match=missing.replace(".", r"\.")) as e:
        from_pretrained(ckpt[0])
    assert "save_pretrained" in str(e.value) or "missing" in str(e.value)


def test_wrong_model_type(ckpt):
    cfg = json.loads((ckpt[0] / "config.json").read_text())
    cfg["model_type"] = "diffusion_transformer"
    (ckpt[0] / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"config\.json: model_type 'diffusion_transformer'"):
        from_pretrained(ckpt[0])


def test_stats_of_the_wrong_dimension(ckpt):
    stats = json.loads((ckpt[0] / "stats.json").read_text())
    stats["action"]["q01"] = stats["action"]["q01"][:6]
    (ckpt[0] / "stats.json").write_text(json.dumps(stats))
    with pytest.raises(CheckpointError, match=r"stats\.json.*dimension"):
        load_policy_dir(ckpt[0])


def test_weights_of_another_model_are_refused_before_loading(ckpt, tmp_path):
    other = VLAAdapter(tiny_config(head_blocks=1))
    save_pretrained(tmp_path / "other", other, tiny_processor(other.config))
    shutil.copy(tmp_path / "other" / "model.safetensors", ckpt[0] / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not match.*missing"):
        from_pretrained(ckpt[0])


def test_invalid_config_values(ckpt):
    cfg = json.loads((ckpt[0] / "config.json").read_text())
    cfg["model"]["head_blocks"] = 99
    (ckpt[0] / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"config\.json: invalid.*head_blocks"):
        from_pretrained(ckpt[0])
    (ckpt[0] / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read JSON"):
        from_pretrained(ckpt[0])


def test_init_checkpoint_from_the_cpu_yaml(tmp_path):
    from pathlib import Path

    from vla.models.checkpoint import init_checkpoint

    yaml = Path(__file__).resolve().parents[2] / "configs" / "model" / "vla_adapter_cpu.yaml"
    policy = load_policy_dir(init_checkpoint(yaml, tmp_path / "rand"))
    obs = observation(1, size=256)
    assert policy.predict_chunk(obs).shape == (1, 8, 7)
    assert policy.spec.image_shapes["observation.images.image"] == (256, 256, 3)
