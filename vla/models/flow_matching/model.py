"""Flow-matching policy (VLANeXt / π0 family) on the shared VLM backbone.

    model = FlowMatchingPolicy(FlowMatchingConfig.cpu())
    loss, metrics = model.compute_loss(processor(batch, train=True))
    chunk = model.sample_actions(processor(batch))          # normalised (B, chunk_len, action_dim)

Reading order, as in openpi's pi0.py:
    embed_prefix   [proprio history ; image patches ; prompt with meta-queries] as VLM input embeddings
    encode_prefix  one VLM pass → every layer's hidden states → each expert block's Linear(h_i)
    embed_suffix   noisy actions + position, timestep → adaLN condition (inside the action expert)
    compute_loss   flow-matching MSE on the velocity (masked by action_is_pad) + optional DCT loss
    sample_actions Euler from t = 1 (noise) to t = 0 (actions), reusing one prefix encoding for all steps

Convention (openpi): t = 1 is noise, t = 0 is data; x_t = t·ε + (1 − t)·a; the network predicts u = ε − a.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vla.models.backbone import VLMBackbone
from vla.models.flow_matching import flow, rtc
from vla.models.flow_matching.config import FlowMatchingConfig
from vla.models.flow_matching.expert import ActionExpert


class FlowMatchingPolicy(VLMBackbone):
    """VLM (vision_backbone, projector, language_model) + proprio_projector + meta_queries + action_head."""

    config_class = FlowMatchingConfig

    def __init__(self, config: FlowMatchingConfig) -> None:
        if not isinstance(config, FlowMatchingConfig):
            raise TypeError(f"FlowMatchingPolicy needs a FlowMatchingConfig, got {type(config).__name__}")
        super().__init__(config.backbone)
        self.config = config
        width = config.backbone.llm_hidden
        self.proprio_projector = nn.Linear(config.proprio_dim, width)  # one VLM token per history step
        self.meta_queries = nn.Parameter(torch.randn(config.num_queries, width))  # VLANeXt: randn init
        self.action_head = ActionExpert(
            action_dim=config.action_dim,
            vlm_hidden=width,
            hidden=config.expert_hidden,
            depth=config.expert_depth,
            num_heads=config.expert_heads,
            mlp_ratio=config.mlp_ratio,
            max_positions=config.max_positions,
            freq_dim=config.time_freq_dim,
            time_scale=config.time_embed_scale,
        )
        self.rtc = rtc.RTCConfig()  # real-time chunking knobs, used when sample_actions gets a prefix

    # ------------------------------------------------------------------ prefix (VLM side)
    def embed_prefix(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """VLM input embeddings (B, S, llm_hidden) and attention mask (B, S).

        Layout: [history_len proprio tokens ; the backbone's multimodal sequence]. The latter is the shared
        `VLMBackbone.embed_multimodal` (prompt token 0, image patches, the rest of the prompt), whose last
        `num_queries` real tokens are the processor's placeholders, replaced by the learned meta-queries:
        the queries sit right after each prompt, where VLANeXt appends them.
        """
        pixel_values = inputs["pixel_values"]
        if pixel_values.ndim != 5 or pixel_values.shape[1] != self.config.num_images:
            raise ValueError(
                f"pixel_values must be (B, num_images={self.config.num_images}, 6, H, W), "
                f"got {tuple(pixel_values.shape)}; the processor's image_keys must list one key per camera"
            )
        if bool((inputs["attention_mask"].sum(dim=1) <= self.config.num_queries).any()):
            raise ValueError(
                f"a prompt has no tokens besides its num_queries={self.config.num_queries} placeholders; build "
                "inputs with the model's processor (vla.models.registry.build_processor)"
            )
        embeds, mask, _ = self.embed_multimodal(
            pixel_values, inputs["input_ids"], inputs["attention_mask"], self.meta_queries
        )
        proprio = self.proprio_projector(self._proprio_history(inputs["proprio"]).to(embeds.dtype))
        ones = mask.new_ones(mask.shape[0], proprio.shape[1])
        return torch.cat([proprio, embeds], dim=1), torch.cat([ones, mask], dim=1)

    def _proprio_history(self, proprio: torch.Tensor) -> torch.Tensor:
        """(B, D) or (B, history_len, D) normalised states → (B, history_len, D)."""
        h, d = self.config.history_len, self.config.proprio_dim
        if proprio.ndim == 2:
            proprio = proprio[:, None]
        if proprio.ndim != 3 or proprio.shape[1:] != (h, d):
            raise ValueError(
                f"proprio must be (B, {d}) or (B, history_len={h}, {d}), got {tuple(proprio.shape)}; "
                "with history_len > 1 the inputs must carry the state history"
            )
        return proprio

    def encode_prefix(self, inputs: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One VLM pass: each expert block's projected hidden states, and the VLM token mask (B, S) bool."""
        embeds, mask = self.embed_prefix(inputs)
        hidden_states = self.run_language_model(embeds, mask)
        return self.action_head.project_context(hidden_states), mask.bool()

    # ------------------------------------------------------------------ training
    def compute_loss(
        self, inputs: dict[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Flow-matching loss on normalised actions; padded chunk steps contribute nothing."""
        cfg = self.config
        actions = inputs["action"]
        if actions.ndim != 3 or actions.shape[1:] != (cfg.chunk_len, cfg.action_dim):
            raise ValueError(
                f"action must be (B, {cfg.chunk_len}, {cfg.action_dim}), got {tuple(actions.shape)}"
            )
        b = actions.shape[0]
        pad = inputs.get("action_is_pad")
        valid = (
            torch.ones(actions.shape[:2], dtype=torch.bool, device=actions.device)
            if pad is None
            else ~pad.bool()
        )
        noise = _randn(actions.shape, actions.device, generator).to(actions.dtype)
        t = self._sample_time(b, actions.device, generator)
        x_t = flow.noisy_actions(actions, noise, t)  # t = 1 is noise
        target = flow.velocity_target(actions, noise)

        context, mask = self.encode_prefix(inputs)
        v = self.action_head(x_t, t, context, mask).float()

        per_step = (v - target.float()).square().mean(dim=-1)  # (B, T): mean over the action dim
        n_valid = valid.sum().clamp(min=1)
        flow_loss = (per_step * valid).sum() / n_valid
        loss = flow_loss
        metrics = {"flow_mse": float(flow_loss.detach())}
        if cfg.dct_loss_weight > 0:
            x0 = flow.predicted_x0(x_t.float(), t, v)
            x0 = torch.where(valid[..., None], x0, actions.float())  # padded steps: zero error
            dct = flow.dct_loss(
                x0,
                actions.float(),
                low_freq_split=cfg.dct_low_freq_split,
                low_weight=cfg.dct_low_freq_weight,
                high_weight=cfg.dct_high_freq_weight,
            )
            loss = loss + cfg.dct_loss_weight * dct
            metrics["dct"] = float(dct.detach())
        metrics["loss"] = float(loss.detach())
        metrics["t_mean"] = float(t.mean())
        return loss, metrics

    def _sample_time(self, b: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
        cfg = self.config
        gen_device = generator.device if generator is not None else device
        t = flow.sample_time(
            b,
            cfg.time_sampling,
            alpha=cfg.beta_alpha,
            beta=cfg.beta_beta,
            scale=cfg.beta_scale,
            offset=cfg.beta_offset,
            device=gen_device,
            generator=generator,
        )
        return t.to(device)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def sample_actions(
        self,
        inputs: dict[str, torch.Tensor],
        generator: torch.Generator | None = None,
        num_steps: int | None = None,
        noise: torch.Tensor | None = None,
        prefix: rtc.ActionPrefix | None = None,
    ) -> torch.Tensor:
        """Normalised action chunk (B, chunk_len, action_dim): Euler over `num_steps` (default config).
        `prefix`: actions still to be executed; the chunk's first steps are guided toward them (rtc.py)."""
        cfg = self.config
        steps = cfg.num_inference_steps if num_steps is None else int(num_steps)
        b = inputs["input_ids"].shape[0]
        device = inputs["input_ids"].device
        if noise is None:
            noise = _randn((b, cfg.chunk_len, cfg.action_dim), device, generator)
        context, mask = self.encode_prefix(inputs)  # the VLM runs once; every Euler step reuses it
        if prefix is not None:
            return rtc.guided_sample(
                self.action_head, (context, mask), noise.float(), steps, prefix, self.rtc
            )
        return flow.euler_sample(
            lambda x, t: self.action_head(x, t, context, mask).float(), noise.float(), steps
        )

    def extra_repr(self) -> str:
        return f"model_type={self.config.model_type!r}"


def _randn(shape: Any, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal on `device`, drawn on the generator's device when one is given."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, device=generator.device, generator=generator).to(device)
