"""Data sets: class folders and Pascal VOC scenes (as face crops), inspection, hashing, splits."""

from maskwatch.data.dataset import DataBundle, Problem, Sample, load_data
from maskwatch.data.split import Split, load_split, make_split, save_split

__all__ = ["DataBundle", "Problem", "Sample", "Split", "load_data", "load_split", "make_split", "save_split"]
