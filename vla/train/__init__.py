"""Training: the loop, its configuration, checkpoints with exact resume, schedules, logging and hooks.

    from vla.train import TrainConfig, Trainer
    result = Trainer(TrainConfig.from_dict(cfg), model=..., processor=..., dataset=..., optim_cfg=...,
                     model_config=...).fit()

`pion-train` (vla/cli/train.py) builds all of this from configs/train.yaml.
"""

from vla.train.config import TrainConfig
from vla.train.loop import NonFiniteLossError, Trainer, TrainResult
from vla.train.state import ResumeError

__all__ = ["NonFiniteLossError", "ResumeError", "TrainConfig", "TrainResult", "Trainer"]
