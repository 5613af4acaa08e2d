"""The one processor: training and inference give identical inputs; augmentation; normalisation; prompt."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny_models import observation, tiny_config, tiny_processor

from vla.data.dataloader import collate_batch
from vla.models.policy import TorchPolicy
from vla.models.processor import (
    VLA_ADAPTER_PROMPT,
    PolicyProcessor,
    ProcessorConfig,
    default_stats,
    normalize,
)
from vla.models.tokenizer import QUERY_TOKEN, build_byte_tokenizer
from vla.models.vla_adapter import VLAAdapter


def _dataset_batch(obs: dict) -> dict:
    """The same observation as the data pipeline delivers it: per-sample torch items, collated."""
    items = []
    for i in range(len(obs["task"])):
        item = {k: torch.from_numpy(np.ascontiguousarray(v[i])) for k, v in obs.items() if k != "task"}
        items.append({**item, "task": obs["task"][i]})
    return collate_batch(items)


def test_training_and_inference_paths_give_identical_model_inputs():
    config = tiny_config()
    processor = tiny_processor(config, augment=False)
    obs = observation(3, with_action=True)
    train_inputs = processor(_dataset_batch(obs), train=True, generator=torch.Generator().manual_seed(0))
    policy = TorchPolicy(VLAAdapter(config), processor)
    infer_inputs = policy.model_inputs({k: v for k, v in obs.items() if not k.startswith("action")})
    assert set(train_inputs) - set(infer_inputs) == {"action", "action_is_pad"}
    for key, value in infer_inputs.items():
        assert torch.equal(train_inputs[key], value), key
    # eval mode of an augmenting processor is the same transform too
    eval_inputs = tiny_processor(config, augment=True)(_dataset_batch(obs), train=False)
    assert torch.equal(eval_inputs["pixel_values"], infer_inputs["pixel_values"])


def test_train_augmentation_is_seeded_bounded_and_differs_from_eval():
    processor = tiny_processor(tiny_config())
    obs = _dataset_batch(observation(4))
    a = processor(obs, train=True, generator=torch.Generator().manual_seed(1))["pixel_values"]
    b = processor(obs, train=True, generator=torch.Generator().manual_seed(1))["pixel_values"]
    c = processor(obs, train=True, generator=torch.Generator().manual_seed(2))["pixel_values"]
    e = processor(obs, train=False)["pixel_values"]
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, e)
    # un-normalise: every channel stays in [0, 1]; DINO and SigLIP channels show the same image
    dino = a[:, :, :3] * torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1) + torch.tensor(
        [0.485, 0.456, 0.406]
    ).view(3, 1, 1)
    siglip = a[:, :, 3:] * 0.5 + 0.5
    assert dino.min() >= -1e-5 and dino.max() <= 1 + 1e-5
    torch.testing.assert_close(dino, siglip, atol=1e-5, rtol=0)


def test_eval_transform_is_a_centre_crop_of_area_0_9():
    cfg = ProcessorConfig(image_size=20, input_image_size=20, num_queries=2, prompt_template="{task}")
    processor = PolicyProcessor(cfg, build_byte_tokenizer(), default_stats())
    img = np.zeros((1, 20, 20, 3), dtype=np.uint8)
    side = round(20 * math.sqrt(0.9))  # 19 px: a 1-px border is cut on the far sides
    img[:, :side, :side] = 255
    out = processor.process_images(img, augment=False)[:, 3:] * 0.5 + 0.5
    assert out.min() > 0.99  # the crop holds only the white square, resized back to 20x20


def test_brightness_jitter_is_additive_like_tf():
    cfg = ProcessorConfig(image_size=8, input_image_size=8, crop_scale=1.0, num_queries=1, prompt_template="{task}",
                          contrast=(1.0, 1.0), saturation=(1.0, 1.0), hue=0.0)  # fmt: skip
    processor = PolicyProcessor(cfg, build_byte_tokenizer(), default_stats())
    img = np.full((1, 8, 8, 3), 100, dtype=np.uint8)
    out = (
        processor.process_images(img, augment=True, generator=torch.Generator().manual_seed(0))[:, 3:] * 0.5
        + 0.5
    )
    delta = out - 100 / 255
    assert delta.abs().max() <= 0.2 + 1e-5 and delta.std() < 1e-5 and delta.abs().max() > 1e-3


def test_normalisation_q01_q99_clipped_gripper_converted_and_inverted():
    stats = default_stats()
    stats["action"]["q01"] = [-0.5, -1, -1, -1, -1, -1, -1]
    stats["action"]["q99"] = [0.5, 1, 1, 1, 1, 1, 1]
    stats["action"]["q01"][3] = stats["action"]["q99"][3] = 0.3  # constant dim -> 0
    processor = PolicyProcessor(ProcessorConfig(num_queries=1), build_byte_tokenizer(), stats)
    actions = torch.tensor([[[0.25, 0.5, 0, 0.3, 0, 0, -1], [2.0, -3, 0, 0.3, 0, 0, 1]]])
    y = processor.normalize_actions(actions)
    torch.testing.assert_close(y[0, 0, :3], torch.tensor([0.5, 0.5, 0.0]))
    torch.testing.assert_close(y[0, 1, :2], torch.tensor([1.0, -1.0]))  # clipped
    assert (
        y[0, 0, 3] == 0 and y[0, 0, 6] == 1.0 and y[0, 1, 6] == 0.0
    )  # gripper: 1 open, 0 close (not normalised)
    back = processor.unnormalize_actions(y)
    torch.testing.assert_close(back[0, 0], actions[0, 0], atol=1e-6, rtol=0)
    assert back[0, 1, 6] == 1.0
    soft = processor.unnormalize_actions(torch.tensor([[[0.0] * 6 + [0.7], [0.0] * 6 + [0.2]]]))
    assert soft[0, :, 6].tolist() == [-1.0, 1.0]  # binarised at 0.5: open / close
    state = normalize(torch.tensor([[3.0] * 8]), torch.zeros(8), torch.ones(8))
    assert torch.equal(state, torch.ones(1, 8))


def test_stats_of_the_wrong_dimension_are_refused():
    with pytest.raises(ValueError, match="have dimension"):
        PolicyProcessor(ProcessorConfig(), build_byte_tokenizer(), default_stats(state_dim=7))
    with pytest.raises(ValueError, match="need 'action'"):
        PolicyProcessor(
            ProcessorConfig(),
            build_byte_tokenizer(),
            {"observation.state": default_stats()["observation.state"]},
        )


def test_prompt_is_the_vla_adapter_template_with_query_placeholders():
    tok = build_byte_tokenizer()
    processor = PolicyProcessor(ProcessorConfig(num_queries=3), tok, default_stats())
    out = processor.tokenize(["Put The Bowl", "x"])
    text = tok.decode(out["input_ids"][0][out["attention_mask"][0].bool()])
    assert text == VLA_ADAPTER_PROMPT.format(task="put the bowl") + QUERY_TOKEN * 3
    assert "You are Qwen" in text and out["attention_mask"][1].sum() < out["attention_mask"][0].sum()
    assert out["input_ids"][1, -1] == tok.pad_token_id  # right padding
    with pytest.raises(ValueError, match="prompt_template"):
        ProcessorConfig(prompt_template="no task here")


def test_gripper_dim_is_never_normalised():
    stats = default_stats()
    stats["action"]["q01"][6], stats["action"]["q99"][6] = -0.5, 0.5
    cfg = ProcessorConfig(num_queries=1, gripper_target="libero_raw", binarize_gripper=False)
    processor = PolicyProcessor(cfg, build_byte_tokenizer(), stats)
    actions = torch.tensor([[[0.0] * 6 + [0.25]]])
    assert processor.normalize_actions(actions)[0, 0, 6] == 0.25
    assert processor.unnormalize_actions(actions)[0, 0, 6] == 0.25
