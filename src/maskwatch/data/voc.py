"""Pascal VOC scene sets (``images/`` + ``annotations/*.xml``) and their faces as cached crops."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from maskwatch.data.crops import crop_square
from maskwatch.data.images import BadImageError, is_image_name, open_rgb
from maskwatch.io import read_json, write_json
from maskwatch.labels import canonical_label
from maskwatch.progress import track

CROP_FORMAT_VERSION = 1


@dataclass
class VocObject:
    label: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


@dataclass
class VocImage:
    image_path: Path
    annotation_path: Path
    objects: list[VocObject] = field(default_factory=list)


def is_voc_dir(root: Path) -> bool:
    ann = root / "annotations"
    if not ann.is_dir():
        ann = root / "Annotations"
    return ann.is_dir() and any(ann.glob("*.xml"))


def _subdir(root: Path, *names: str) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return root / names[0]


def read_voc(root: Path) -> tuple[list[VocImage], list[tuple[Path, str]]]:
    """Parse every annotation; return the images with their boxes and the problems found."""
    ann_dir = _subdir(root, "annotations", "Annotations")
    img_dir = _subdir(root, "images", "JPEGImages")
    by_stem = {p.stem: p for p in img_dir.iterdir() if is_image_name(p)} if img_dir.is_dir() else {}
    images: list[VocImage] = []
    problems: list[tuple[Path, str]] = []
    for xml_path in sorted(ann_dir.glob("*.xml")):
        try:
            tree = ET.parse(xml_path)
        except ET.ParseError as exc:
            problems.append((xml_path, f"bad annotation XML ({exc})"))
            continue
        node = tree.getroot()
        filename = (node.findtext("filename") or "").strip()
        image_path = img_dir / filename if filename else None
        if image_path is None or not image_path.is_file():
            image_path = by_stem.get(Path(filename).stem) or by_stem.get(xml_path.stem)
        if image_path is None:
            problems.append((xml_path, "annotation names an image that does not exist"))
            continue
        item = VocImage(image_path=image_path, annotation_path=xml_path)
        for obj in node.iter("object"):
            name = obj.findtext("name")
            bb = obj.find("bndbox")
            try:
                coords = tuple(float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[union-attr,arg-type]
            except (AttributeError, TypeError, ValueError):
                problems.append((xml_path, "object without a valid bndbox"))
                continue
            if not name or coords[2] <= coords[0] or coords[3] <= coords[1]:
                problems.append((xml_path, f"empty or unnamed box {coords}"))
                continue
            item.objects.append(VocObject(canonical_label(name), coords))  # type: ignore[arg-type]
        images.append(item)
    return images, problems


@dataclass
class CropRecord:
    id: str  # "<scene image path>#<object index>"
    path: Path  # the crop file in the cache
    label: str
    source: Path  # the scene image
    box: tuple[float, float, float, float]


@dataclass
class VocCrops:
    crops: list[CropRecord]
    problems: list[tuple[Path, str]]
    boxes: int
    skipped_small: int
    from_cache: bool


def _signature(root: Path, margin: float, min_size: int) -> tuple[str, str]:
    """(cache key of the parameters, fingerprint of the files) for a VOC folder."""
    key = hashlib.sha1(json.dumps([str(root.resolve()), margin, min_size, CROP_FORMAT_VERSION]).encode()).hexdigest()[
        :16
    ]
    fp = hashlib.sha1()
    for sub in ("annotations", "Annotations", "images", "JPEGImages"):
        d = root / sub
        if d.is_dir():
            for p in sorted(d.iterdir()):
                st = p.stat()
                fp.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return key, fp.hexdigest()


def extract_crops(root: Path, cache_root: Path, margin: float = 0.15, min_size: int = 12) -> VocCrops:
    """Every box of a VOC set as a square face crop of its class, cached on disk.

    Boxes whose shorter side is under ``min_size`` pixels are skipped and counted. A second call
    with the same folder and parameters reads the cache's manifest and touches no image.
    """
    root = Path(root)
    key, fingerprint = _signature(root, margin, min_size)
    out_dir = cache_root / "voc-crops" / f"{root.name}-{key}"
    manifest_path = out_dir / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = read_json(manifest_path)
            if manifest.get("fingerprint") == fingerprint:
                return _from_manifest(manifest, out_dir)
        except (OSError, ValueError, KeyError):
            pass  # a damaged manifest is rebuilt below
    images, problems = read_voc(root)
    crops: list[CropRecord] = []
    boxes = skipped = 0
    for item in track(images, f"cropping faces of {root.name}"):
        boxes += len(item.objects)
        wanted = [
            (k, o) for k, o in enumerate(item.objects) if min(o.box[2] - o.box[0], o.box[3] - o.box[1]) >= min_size
        ]
        skipped += len(item.objects) - len(wanted)
        if not wanted:
            continue
        try:
            image = open_rgb(item.image_path)
        except BadImageError as exc:
            problems.append((item.image_path, exc.reason))
            continue
        for k, obj in wanted:
            crop_path = out_dir / obj.label / f"{item.image_path.stem}_{k}.jpg"
            crop_path.parent.mkdir(parents=True, exist_ok=True)
            crop_square(image, obj.box, margin).save(crop_path, quality=95)
            crops.append(
                CropRecord(f"{item.image_path.resolve()}#{k}", crop_path, obj.label, item.image_path.resolve(), obj.box)
            )
    manifest = {
        "fingerprint": fingerprint,
        "root": str(root.resolve()),
        "margin": margin,
        "min_size": min_size,
        "boxes": boxes,
        "skipped_small": skipped,
        "problems": [[str(p), r] for p, r in problems],
        "crops": [
            {
                "id": c.id,
                "file": str(c.path.relative_to(out_dir)),
                "label": c.label,
                "source": str(c.source),
                "box": list(c.box),
            }
            for c in crops
        ],
    }
    write_json(manifest_path, manifest)
    return VocCrops(crops, problems, boxes, skipped, from_cache=False)


def _from_manifest(manifest: dict, out_dir: Path) -> VocCrops:
    crops = [
        CropRecord(c["id"], out_dir / c["file"], c["label"], Path(c["source"]), tuple(c["box"]))  # type: ignore[arg-type]
        for c in manifest["crops"]
    ]
    missing = [c for c in crops if not c.path.is_file()]
    if missing:
        raise FileNotFoundError(missing[0].path)
    problems = [(Path(p), r) for p, r in manifest["problems"]]
    return VocCrops(crops, problems, manifest["boxes"], manifest["skipped_small"], from_cache=True)
