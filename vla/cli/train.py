"""pion-train: fine-tune a policy from configs/train.yaml (model / optim / data groups + trainer keys).

    pion-train +experiment=vla_adapter_pion_object
    pion-train model=flow_matching optim=muon steps=200 batch_size=16 data.root=outputs/demos/libero_object/dataset
    torchrun --nproc_per_node 2 -m vla.cli.train ...      # DDP (or distributed.strategy=fsdp)
    pion-train ... resume=true                            # continue the newest run under out_dir

Bad input (missing dataset, unknown key, resuming with another model config) prints one line and exits 2;
a NaN/inf loss stops the run, names the step and the last good checkpoint, and exits 3.
The evaluation hook runs the LIBERO harness of `envs`, and a config with a `demo` section (+experiment=demo) runs
`envs.demo.run_demo`; both are imported lazily: vla never imports envs at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from vla.config import hydra_cli

CLI_KEYS = ("model", "optim", "data", "pretrained_backbone", "init_backbone")


def harness_evaluator(eval_cfg, device: str = "cpu", policy_factory: str | None = None):
    """evaluate(export_dir, step) -> summary, through envs.eval on the configured suite/tasks/init states.

    Results go to <run>/evals/step_<N>/ (export_dir is <run>/checkpoints/step_<N>/pretrained or ema).
    `policy_factory` ("module:factory" taking path=, device=) loads exports that are not our checkpoint format.
    """

    def evaluate(export_dir: Path, step: int) -> dict:
        from envs.eval import EvalRun, build_episodes
        from envs.eval import evaluate as run_eval

        episodes = build_episodes(
            [eval_cfg.suite], eval_cfg.task_ids, eval_cfg.trials_per_task, eval_cfg.seeds,
            init_states=eval_cfg.init_states,
        )  # fmt: skip
        run = EvalRun(
            out_dir=Path(export_dir).parents[2] / "evals" / f"step_{step:08d}",
            # a checkpoint directory: vla.policies.load_policy -> load_policy_dir
            policy=policy_factory or str(export_dir),
            policy_kwargs={"device": device, **({"path": str(export_dir)} if policy_factory else {})},
            workers=eval_cfg.workers,
            max_steps=eval_cfg.max_steps,
            videos_per_task=eval_cfg.videos_per_task,
            plot=False,
        )
        return run_eval(run, episodes)

    return evaluate


def build_data(data_cfg: dict, chunk_len: int):
    from vla.data import compute_stats, open_chunk_dataset

    root = data_cfg.get("root")
    kwargs = {
        k: data_cfg[k] for k in ("tail", "layout", "episodes", "video_backend", "reader") if k in data_cfg
    }
    dataset = open_chunk_dataset(
        data_cfg.get("repo_id", "local/dataset"), root, chunk_len=chunk_len, **kwargs
    )
    return dataset, compute_stats(dataset)


def run_training(cfg: dict[str, Any], evaluate_fn=None):
    """Build model, processor, data and optimizer config from a plain config dict and train."""
    import torch

    from vla.data import ResumableSampler, collate_batch
    from vla.train import TrainConfig, Trainer

    cfg = dict(cfg)
    model_yaml, optim_cfg, data_cfg = dict(cfg["model"]), dict(cfg["optim"]), dict(cfg["data"])
    train_cfg = TrainConfig.from_dict({k: v for k, v in cfg.items() if k not in CLI_KEYS})
    torch.manual_seed(train_cfg.seed)  # identical initial weights on every rank
    cuda = train_cfg.device.startswith("cuda") or (train_cfg.device == "auto" and torch.cuda.is_available())
    if (
        model_yaml.get("name") == "lerobot"
    ):  # lerobot's own policies (ACT, SmolVLA, π0.5): vla/interop/lerobot
        from vla.interop.lerobot.training import lerobot_training_parts

        device = train_cfg.device if train_cfg.device != "auto" else ("cuda" if cuda else "cpu")
        parts = lerobot_training_parts(model_yaml, data_cfg, optim_cfg, device)
    else:
        parts = _policy_parts(cfg, model_yaml, data_cfg)
    dataset = parts["dataset"]
    sampler = ResumableSampler(dataset.valid_starts, seed=train_cfg.seed, shuffle=True, infinite=False)
    if evaluate_fn is None and train_cfg.eval.every > 0:
        evaluate_fn = harness_evaluator(
            train_cfg.eval, "cuda" if cuda else "cpu", parts.get("policy_factory")
        )
    return Trainer(
        train_cfg,
        model=parts["model"],
        processor=parts["processor"],
        dataset=dataset,
        sampler=sampler,
        collate_fn=collate_batch,
        optim_cfg=parts.get("optim_cfg", optim_cfg),
        model_config=parts["identity"],
        evaluate_fn=evaluate_fn,
        export_fn=parts.get("export_fn"),
        extra_meta={"data": data_cfg, **parts["extra_meta"]},
    ).fit()


def _policy_parts(cfg: dict[str, Any], model_yaml: dict, data_cfg: dict) -> dict[str, Any]:
    """Model, processor and data of our own policy families (vla.models.registry)."""
    from vla.models.registry import build_model, build_processor, model_config_from_dict

    config = model_config_from_dict(model_yaml)
    dataset, stats = build_data(data_cfg, config.chunk_len)
    model = build_model(config, pretrained=bool(cfg.get("pretrained_backbone", True)))
    processor = build_processor(config, model_yaml.get("processor"), stats)
    # the VLM from a backbone checkpoint (vla/models/backbone_checkpoint.py); the head keeps its fresh init
    if cfg.get("init_backbone"):
        from vla.models.backbone_checkpoint import init_backbone

        meta = init_backbone(model, cfg["init_backbone"], processor.tokenizer)
        print(f"[pion-train] backbone from {cfg['init_backbone']} ({meta['num_parameters']:,} parameters)")
    return {
        "model": model,
        "processor": processor,
        "dataset": dataset,
        "identity": {"model": config.to_dict(), "processor": processor.cfg.to_dict()},
        "extra_meta": {"model_type": config.model_type, "init_backbone": cfg.get("init_backbone")},
    }


@hydra_cli("train")
def main(cfg: DictConfig) -> None:
    """Train a VLA policy (configs/train.yaml)."""
    from omegaconf import OmegaConf

    from vla.train import NonFiniteLossError

    plain = OmegaConf.to_container(cfg, resolve=True)
    if plain.get(
        "demo"
    ):  # the main job: demonstrations -> training -> held-out eval -> report (envs/demo.py)
        from envs.demo import run_demo

        try:
            run_demo(plain)
        except NonFiniteLossError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(3) from e
        return
    try:
        result = run_training(plain)
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(3) from e
    best = f"; best eval at step {result.best['step']}" if result.best else ""
    print(f"[pion-train] done: {result.step} steps, last loss {result.last_loss}, run {result.run_dir}{best}")
