"""Backbone checkpoints (vla/models/backbone_checkpoint.py): export -> init round trip, refusals, the shipped file,
and `pion-train init_backbone=...` end to end on a synthetic dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import VLAAdapter, VLAAdapterConfig, observation, tiny_backbone, tiny_config, tiny_processor

from vla.config import REPO_ROOT
from vla.models.backbone_checkpoint import (
    BACKBONE_PREFIXES,
    backbone_state_dict,
    export_backbone,
    init_backbone,
    main,
    read_backbone_meta,
    save_backbone,
    sidecar,
)
from vla.models.checkpoint import CheckpointError, save_pretrained
from vla.models.tokenizer import build_byte_tokenizer

SHIPPED = REPO_ROOT / "assets/backbones/vla_adapter_cpu_libero128.safetensors"


def _model(seed: int, backbone=None) -> VLAAdapter:
    torch.manual_seed(seed)
    config = (
        tiny_config()
        if backbone is None
        else VLAAdapterConfig(backbone=backbone, num_action_queries=4, head_heads=2)
    )
    model = VLAAdapter(config)
    with torch.no_grad():  # ActionQuery is zero-initialised: give it a value a copy would betray
        model.action_queries.weight.normal_()
    return model.eval()


def _head(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(BACKBONE_PREFIXES)}


def _backbone_outputs(model, inputs) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        vision = model.embed_images(inputs["pixel_values"])
        text = model.run_language_model(model.embed_tokens(inputs["input_ids"]), inputs["attention_mask"])
    return (vision, *text)


def test_export_init_round_trip_same_backbone_outputs_fresh_head(tmp_path):
    source, target = _model(0), _model(1)
    processor = tiny_processor(source.config)
    inputs = processor(observation(batch=2), train=False)
    fresh_head = _head(target)
    save_pretrained(tmp_path / "policy", source, processor)  # a policy checkpoint, as pion-train writes it
    weights = export_backbone(tmp_path / "policy", tmp_path / "bb.safetensors", note="test")
    meta = read_backbone_meta(weights)
    assert meta["provenance"]["note"] == "test" and meta["num_tensors"] == len(backbone_state_dict(source))
    assert meta["backbone"]["llm_hidden"] == 32 and "llm_path" not in meta["backbone"]

    before = _backbone_outputs(target, inputs)
    init_backbone(target, tmp_path / "bb.json", processor.tokenizer)  # either file of the pair names it
    after, want = _backbone_outputs(target, inputs), _backbone_outputs(source, inputs)
    assert all(torch.equal(a, w) for a, w in zip(after, want, strict=True))
    assert not torch.allclose(before[0], after[0])  # it did change the target's VLM
    head = _head(target)
    assert head.keys() == fresh_head.keys() and all(torch.equal(head[k], fresh_head[k]) for k in head)
    assert not torch.equal(head["action_queries.weight"], _head(source)["action_queries.weight"])


def test_config_mismatch_names_the_keys_and_loads_nothing(tmp_path):
    save_backbone(tmp_path / "bb", _model(0), build_byte_tokenizer())
    other = _model(1, backbone=tiny_backbone(llm_layers=3, llm_mlp=96))
    snapshot = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"differs from model\.backbone in: llm_layers.*llm_mlp") as exc:
        init_backbone(other, tmp_path / "bb.safetensors")
    assert "\n" not in str(exc.value) and "dino_layers" not in str(exc.value)
    assert all(torch.equal(v, snapshot[k]) for k, v in other.state_dict().items())


def test_attention_kernel_and_weight_paths_do_not_count_as_mismatch(tmp_path):
    save_backbone(tmp_path / "bb", _model(0), build_byte_tokenizer())
    other = _model(1, backbone=tiny_backbone(attn_implementation="sdpa", llm_path=None, dino_path="/x"))
    init_backbone(other, tmp_path / "bb")
    assert torch.equal(other.projector.fc1.weight, _model(0).projector.fc1.weight)


def test_tensor_shape_mismatch_is_refused_with_key_names(tmp_path):
    weights = save_backbone(tmp_path / "bb", _model(0), build_byte_tokenizer())
    wide = save_backbone(
        tmp_path / "wide", _model(0, backbone=tiny_backbone(llm_mlp=96)), build_byte_tokenizer()
    )
    weights.write_bytes(wide.read_bytes())  # the JSON says one model, the tensors are another's
    with pytest.raises(
        CheckpointError, match=r"does not fit the model's backbone.*language_model\.layers\.0\.mlp"
    ):
        init_backbone(_model(1), weights)


def test_tokenizer_mismatch_is_refused(tmp_path):
    save_backbone(tmp_path / "bb", _model(0), build_byte_tokenizer())
    tok = build_byte_tokenizer()
    tok.add_tokens(["<|extra|>"])
    with pytest.raises(CheckpointError, match="tokenizer differs"):
        init_backbone(_model(1), tmp_path / "bb", tok)


def test_missing_or_foreign_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="nope.safetensors is missing"):
        init_backbone(_model(0), tmp_path / "nope.safetensors")
    weights = save_backbone(tmp_path / "bb", _model(0), build_byte_tokenizer())
    sidecar(weights)[1].write_text(json.dumps({"format_version": 1, "kind": "policy"}))
    with pytest.raises(CheckpointError, match="not a backbone checkpoint"):
        init_backbone(_model(0), weights)


def test_export_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "no_checkpoint"), str(tmp_path / "out.safetensors")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exc.value.code == 2 and len(err) == 1 and "no_checkpoint" in err[0]


def test_shipped_backbone_loads_into_the_cpu_scale_config():
    from omegaconf import OmegaConf

    from vla.models.registry import build_model, build_tokenizer, model_config_from_dict

    assert SHIPPED.is_file() and sidecar(SHIPPED)[1].is_file(), "run bash scripts/pretrain_backbone.sh"
    assert SHIPPED.stat().st_size <= 25 * 2**20
    yaml = OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "configs/model/vla_adapter_cpu.yaml"))
    config = model_config_from_dict(yaml)
    torch.manual_seed(0)
    model = build_model(config, pretrained=False)
    meta = init_backbone(model, SHIPPED.relative_to(REPO_ROOT), build_tokenizer(config))  # repo-relative path
    from safetensors.torch import load_file

    shipped = load_file(str(SHIPPED))
    assert meta["num_parameters"] == sum(t.numel() for t in shipped.values())
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in shipped.items())
    assert not torch.any(model.action_queries.weight)  # the head side stays at its fresh init


def test_pion_train_init_backbone_starts_from_the_file(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    from dataset_factory import write_dataset

    from vla.cli.train import run_training
    from vla.models.checkpoint import from_pretrained
    from vla.models.registry import build_model, model_config_from_dict

    write_dataset(tmp_path / "ds", [12, 12], res=32)
    yaml = {"name": "vla_adapter", "backbone": {"preset": "cpu", **{k: v for k, v in tiny_backbone().to_dict().items()
            if not k.endswith("_path")}}, "num_action_queries": 4, "head_heads": 2, "chunk_len": 4,
            "n_action_steps": 4, "processor": {"input_image_size": 32, "prompt_template": "{task}"}}  # fmt: skip
    source = build_model(model_config_from_dict(yaml), pretrained=False)
    save_backbone(tmp_path / "bb", source, build_byte_tokenizer())
    cfg = {
        "model": yaml, "optim": {"preset": "adamw", "lr": 0.0, "weight_decay": 0.0, "verbose": False},
        "data": {"repo_id": "local/test", "root": str(tmp_path / "ds")}, "pretrained_backbone": False,
        "init_backbone": str(tmp_path / "bb.safetensors"), "steps": 1, "batch_size": 4, "num_workers": 0,
        "device": "cpu", "out_dir": str(tmp_path / "runs"), "run_name": "r", "seed": 3,
        "log": {"every": 1, "progress": False, "tensorboard": False},
    }  # fmt: skip
    result = run_training(cfg)
    trained, _ = from_pretrained(result.run_dir / "checkpoints/step_00000001/pretrained")
    torch.manual_seed(3)  # run_training's seed: the same fresh head
    fresh = build_model(model_config_from_dict(yaml), pretrained=False)
    got, src, new = trained.state_dict(), source.state_dict(), fresh.state_dict()
    assert all(torch.equal(got[k], src[k]) for k in backbone_state_dict(source))
    assert all(torch.equal(got[k], new[k]) for k in got if not k.startswith(BACKBONE_PREFIXES))
