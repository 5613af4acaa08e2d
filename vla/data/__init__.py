"""Datasets: the public LIBERO LeRobot layouts behind one loader with canonical keys."""

from vla.data.layouts import LAYOUTS, Layout, LayoutError, detect_layout, get_layout
from vla.data.loader import LiberoDataset, load_libero_dataset

__all__ = [
    "LAYOUTS",
    "Layout",
    "LayoutError",
    "LiberoDataset",
    "detect_layout",
    "get_layout",
    "load_libero_dataset",
]
