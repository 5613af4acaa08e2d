"""VLA-Adapter-Pro: Bridge-Attention L1 policy on the shared VLM (models.md §1)."""

from vla.models.vla_adapter.config import VLAAdapterConfig
from vla.models.vla_adapter.model import VLAAdapter

__all__ = ["VLAAdapter", "VLAAdapterConfig"]
