"""Data sets: class folders and Pascal VOC scenes (as face crops), inspection, hashing, splits.

The names below load lazily, so that inference code (which needs only ``data.crops`` and ``data.images``)
does not import PyTorch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DataBundle", "Problem", "Sample", "Split", "load_data", "load_split", "make_split", "save_split"]


def __getattr__(name: str) -> Any:
    if name in ("DataBundle", "Problem", "Sample", "load_data"):
        from maskwatch.data import dataset

        return getattr(dataset, name)
    if name in ("Split", "load_split", "make_split", "save_split"):
        from maskwatch.data import split

        return getattr(split, name)
    raise AttributeError(name)
