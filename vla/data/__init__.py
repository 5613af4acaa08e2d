"""Datasets: LIBERO and DROID LeRobot layouts -> canonical keys -> training samples, batches and normalisation stats."""

from vla.data.chunks import ChunkDataset, open_chunk_dataset, to_uint8_hwc, valid_start_positions
from vla.data.dataloader import ResumableDataLoader, build_dataloader, collate_batch
from vla.data.errors import DatasetError, DatasetNotFoundError
from vla.data.layouts import LAYOUTS, Layout, LayoutError, detect_layout, get_layout
from vla.data.loader import LiberoDataset, load_libero_dataset
from vla.data.sampler import ResumableSampler
from vla.data.stats import compute_stats, load_stats, save_stats
from vla.data.video import video_backend

__all__ = [
    "LAYOUTS",
    "ChunkDataset",
    "DatasetError",
    "DatasetNotFoundError",
    "Layout",
    "LayoutError",
    "LiberoDataset",
    "ResumableDataLoader",
    "ResumableSampler",
    "build_dataloader",
    "collate_batch",
    "compute_stats",
    "detect_layout",
    "get_layout",
    "load_libero_dataset",
    "load_stats",
    "open_chunk_dataset",
    "save_stats",
    "to_uint8_hwc",
    "valid_start_positions",
    "video_backend",
]
