"""Flow-matching policy (VLANeXt / π0 family): DiT action expert on the shared VLM. See model.py."""

from vla.models.flow_matching.config import FlowMatchingConfig
from vla.models.flow_matching.model import FlowMatchingPolicy

__all__ = ["FlowMatchingConfig", "FlowMatchingPolicy"]
