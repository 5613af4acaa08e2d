"""lerobot plugin entry of pion-vla: lerobot imports this package by its distribution name; it registers
`vla.interop.lerobot` (optimizer types `pion` / `muon`, policy type `pion_vla`). See docs/lerobot.md."""

from vla.interop.lerobot import *  # noqa: F403  (registration side effects)
from vla.interop.lerobot import __all__  # noqa: F401
