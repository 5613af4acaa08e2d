"""A LeRobot checkpoint (`lerobot-train` output, `pretrained_model/`) as a `vla.protocol` policy.

    pion-eval policy=envs.eval.lerobot_policy:load +policy_kwargs.path=<ckpt>/pretrained_model

Observations already use LeRobot's LIBERO keys and the datasets' 180-degree image convention, so the
only conversions are uint8 HWC -> float CHW in [0, 1] and the checkpoint's own pre/post-processors
(normalisation). Runs in the harness's parent process, batched across workers.
"""

from __future__ import annotations

import numpy as np

from vla.conventions import LIBERO_OSC_DELTA
from vla.protocol import IMAGE_PREFIX, STATE_KEY, PolicySpec


class LeRobotPolicy:
    def __init__(self, path: str, device: str = "auto", n_action_steps: int | None = None) -> None:
        import torch
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        cfg = PreTrainedConfig.from_pretrained(path)
        cfg.device = device
        self.policy = get_policy_class(cfg.type).from_pretrained(path, config=cfg).to(device).eval()
        self.pre, self.post = make_pre_post_processors(cfg, pretrained_path=path)
        self.device, self.torch = device, torch
        images = {k: tuple(f.shape) for k, f in cfg.input_features.items() if k.startswith(IMAGE_PREFIX)}
        chunk = int(getattr(cfg, "chunk_size", None) or getattr(cfg, "n_action_steps", 1))
        steps = n_action_steps or int(getattr(cfg, "n_action_steps", chunk))
        self.spec = PolicySpec(
            policy_id=f"lerobot:{cfg.type}",
            action_space=LIBERO_OSC_DELTA,
            action_dim=int(cfg.output_features["action"].shape[0]),
            chunk_len=chunk,
            state_dim=int(cfg.input_features[STATE_KEY].shape[0]),
            image_shapes={k: (s[1], s[2], s[0]) for k, s in images.items()},
            n_action_steps=min(steps, chunk),
        )

    def reset(self) -> None:
        self.policy.reset()

    def predict_chunk(self, batch) -> np.ndarray:
        torch = self.torch
        obs = {
            k: torch.from_numpy(np.ascontiguousarray(v)).permute(0, 3, 1, 2).float().div(255)
            for k, v in batch.items()
            if k.startswith(IMAGE_PREFIX)
        }
        obs[STATE_KEY] = torch.from_numpy(np.asarray(batch[STATE_KEY], np.float32))
        obs["task"] = list(batch["task"])
        with torch.inference_mode():
            chunk = self.policy.predict_action_chunk(self.pre(obs))  # (B, T, A), normalised
            b, t, a = chunk.shape
            actions = self.post(chunk.reshape(b * t, a)).reshape(b, t, a)
        return actions.float().cpu().numpy()


def load(path: str, device: str = "auto", n_action_steps: int | None = None) -> LeRobotPolicy:
    return LeRobotPolicy(path, device=device, n_action_steps=n_action_steps)
