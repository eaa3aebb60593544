"""The on-disk format of a synthetic data set (what ``maskwatch data synth`` writes, ``synth/make.py``), read by the
data loader: the marker file, the manifest and which files belong to the set itself rather than to its classes."""

from __future__ import annotations

import csv
from pathlib import Path

MANIFEST = "manifest.csv"
MARKER = "SYNTHETIC"
REPORT = "report.json"
SET_FILES = (MANIFEST, MARKER, REPORT)  # what synthesize writes at the top of its set, beside the class folders
MANIFEST_COLUMNS = (
    "file", "label", "source", "source_id", "kind", "style", "placement", "color", "pattern", "donor", "seed",
)  # fmt: skip


def is_synthetic(root: Path) -> bool:
    """A data set made by ``maskwatch data synth`` (or marked so) carries a SYNTHETIC marker file."""
    return (Path(root) / MARKER).exists()


def read_manifest_sources(root: Path) -> dict[Path, Path]:
    """{synthetic image path: its source image path} from a synthetic set's manifest (empty when there is none)."""
    root = Path(root).resolve()  # the loader resolves image paths: keys must match them however the set was named
    path = root / MANIFEST
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {
            (root / row["file"]).resolve(): Path(row["source"]).resolve()
            for row in csv.DictReader(fh)
            if row.get("source")
        }
