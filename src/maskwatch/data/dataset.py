"""Loading one or more data sets (class folders or VOC scenes) into one list of samples."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from maskwatch.data.images import is_image_name
from maskwatch.data.index import FileInfo, index_files
from maskwatch.data.synthetic import SET_FILES, is_synthetic, read_manifest_sources
from maskwatch.data.voc import extract_crops, is_voc_dir
from maskwatch.errors import MaskwatchError
from maskwatch.labels import canonical_label, order_labels
from maskwatch.paths import cache_dir


@dataclass(frozen=True)
class Sample:
    """One labelled face image."""

    id: str  # stable identity: absolute file path, or "<scene image>#<box index>" for VOC crops
    path: Path  # the image file to read
    label: str  # canonical label
    source: Path  # the photo it came from (itself, or the VOC scene): duplicates are found among sources
    dataset: str  # the data set root it was loaded from
    synthetic: bool = False
    box: tuple[float, float, float, float] | None = None  # the face box in the source (VOC crops)


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str


@dataclass
class DataBundle:
    samples: list[Sample]
    problems: list[Problem]
    datasets: list[dict] = field(default_factory=list)  # per data set: root, kind, counts, skipped
    index: dict[Path, FileInfo] = field(default_factory=dict)  # facts about each source image

    @property
    def labels(self) -> list[str]:
        return order_labels(s.label for s in self.samples)

    def counts(self) -> dict[str, int]:
        c = Counter(s.label for s in self.samples)
        return {label: c[label] for label in self.labels}


# files a class-folder set may hold beside its class folders without being reported (compared in lower case)
SET_NOTES = ("source.md", "readme.md", "license", "license.txt", "manifest.csv")


def _scan_class_folders(root: Path) -> tuple[list[tuple[Path, str]], list[Problem]]:
    files: list[tuple[Path, str]] = []
    problems: list[Problem] = []
    # a set made by `data synth` also holds its marker and report.json: its own files are no problem
    known = set(SET_NOTES) | ({name.lower() for name in SET_FILES} if is_synthetic(root) else set())
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            if entry.name.lower() not in known:
                problems.append(Problem(entry, "not inside a class folder"))
            continue
        label = canonical_label(entry.name)
        for path in sorted(p for p in entry.rglob("*") if p.is_file() and not p.name.startswith(".")):
            if is_image_name(path):
                files.append((path.resolve(), label))
            else:
                problems.append(Problem(path, f"not an image file (extension '{path.suffix or 'none'}')"))
    return files, problems


def load_data(
    roots: Sequence[str | Path],
    *,
    margin: float = 0.15,
    min_box: int = 12,
    cache: Path | None = None,
) -> DataBundle:
    """Load and combine data sets. Bad files are skipped and listed in ``problems``, never raised."""
    if not roots:
        raise MaskwatchError("no data set given (use --data DIR)")
    cache = cache or cache_dir()
    samples: list[Sample] = []
    problems: list[Problem] = []
    datasets: list[dict] = []
    index: dict[Path, FileInfo] = {}
    for raw in roots:
        root = Path(raw).expanduser()
        if root.exists() and not root.is_dir():
            raise MaskwatchError(f"{root}: is a file, not a data set folder")
        if not root.is_dir():
            raise MaskwatchError(f"data set folder not found: {root}")
        name = str(root.resolve())
        if is_voc_dir(root):
            crops = extract_crops(root, cache, margin=margin, min_size=min_box)
            problems += [Problem(p, r) for p, r in crops.problems]
            sources = sorted({c.source for c in crops.crops})
            index.update(index_files(sources, cache, name))
            new = [Sample(c.id, c.path, c.label, c.source, name, box=c.box) for c in crops.crops]
            info = {
                "root": name,
                "kind": "voc",
                "boxes": crops.boxes,
                "skipped_small": crops.skipped_small,
                "crops": len(new),
                "from_cache": crops.from_cache,
            }
        else:
            files, bad = _scan_class_folders(root)
            problems += bad
            facts = index_files([p for p, _ in files], cache, name)
            index.update(facts)
            synthetic = is_synthetic(root)
            # a synthetic image is grouped with the face it was made from (its manifest names it)
            made_from = _synthetic_sources(root, index, cache, name) if synthetic else {}
            new = []
            for path, label in files:
                fact = facts[path]
                if fact.ok:
                    new.append(Sample(str(path), path, label, made_from.get(path, path), name, synthetic=synthetic))
                else:
                    problems.append(Problem(path, fact.reason or "unreadable"))
            info = {"root": name, "kind": "class_folders", "images": len(new)}
        if not new:
            raise MaskwatchError(f"no usable images in {root} (expected DIR/<class>/*.jpg or a VOC folder)")
        info["counts"] = dict(Counter(s.label for s in new))
        info["synthetic"] = any(s.synthetic for s in new)
        datasets.append(info)
        samples += new
    return DataBundle(samples, problems, datasets, index)


def _synthetic_sources(root: Path, index: dict, cache: Path, name: str) -> dict[Path, Path]:
    """{image: source image} for a synthetic set whose manifest names readable sources (indexed for grouping)."""
    pairs = read_manifest_sources(root)
    existing = sorted({src for src in pairs.values() if src.is_file()})
    facts = index_files(existing, cache, f"{name}-sources") if existing else {}
    index.update(facts)
    return {img: src for img, src in pairs.items() if src in facts and facts[src].ok}
