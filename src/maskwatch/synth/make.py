"""``maskwatch data synth``: masked faces made from unmasked ones, for the classes real data lacks.

Every ``without_mask`` face of the given data sets (class folders, or the face crops of a VOC scene set) is run
through maskwatch's own face detector for its box and 5 landmarks; then ``per_face`` variants are drawn
(``synth/draw.py``): a mask worn correctly (``with_mask``), worn incorrectly (under the nose, on the chin,
slipped to one side: ``mask_worn_incorrectly``) or, as hard negatives, something that is not a mask over the
mouth (``without_mask``). With ``donors``, masks are instead moved from real photos of people wearing them
(``draw_transplant``). Output: class folders, ``manifest.csv`` (file, label, source, style, placement, colour,
pattern, donor, seed) and a ``SYNTHETIC`` marker, so that ``load_data`` marks the set synthetic and groups every image
with its source face (a grouped split never puts a synthetic face and its source on two sides).
Each variant's random state depends only on (seed, source id, variant), so the same seed gives the same output.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from maskwatch.data.dataset import Sample, load_data
from maskwatch.data.images import BadImageError, open_rgb
from maskwatch.data.synthetic import MANIFEST, MANIFEST_COLUMNS, MARKER, REPORT
from maskwatch.detect.reframe import find_face
from maskwatch.errors import MaskwatchError
from maskwatch.io import atomic_path, write_json, write_text
from maskwatch.labels import MASK_WORN_INCORRECTLY, WITH_MASK, WITHOUT_MASK
from maskwatch.progress import track

MIN_FACE = 24  # faces smaller than this (pixels) are too coarse to draw on


@dataclass
class SynthReport:
    out: Path
    faces: int = 0
    written: int = 0
    counts: Counter = field(default_factory=Counter)
    skipped: list[dict[str, str]] = field(default_factory=list)
    donors: int = 0  # with_mask faces offered as mask donors
    donors_unusable: list[dict[str, str]] = field(default_factory=list)


def _stable_key(sample: Sample) -> str:
    """The sample's id relative to its data set's folder, so that file names and random draws do not depend on where
    the data lives (ids are absolute paths)."""
    root = str(Path(sample.dataset).resolve())
    return sample.id[len(root) :].lstrip("/\\") if sample.id.startswith(root + os.sep) else sample.id


def _rng(seed: int, key: str, variant: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|{key}|{variant}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def synthesize(
    dirs: list[str | Path],
    out: str | Path,
    *,
    per_face: int = 2,
    seed: int = 0,
    negatives: float = 0.15,
    incorrect: float = 0.4,
    mix: str = "uniform",
    paired: bool = False,
    donors: list[str | Path] | None = None,
    donor_share: float = 1.0,
    detector=None,
    margin: float = 0.15,
    min_box: int = 12,
) -> SynthReport:
    """Draw masks on every ``without_mask`` face of ``dirs`` into class folders under ``out``.

    ``paired``: each variant is two images of one mask (same style, pattern and colour, drawn from the same
    random state), worn correctly and worn wrongly, so that only where it sits tells the classes apart
    (``incorrect`` is unused); a hard negative, drawn with probability ``negatives``, is a third image.

    ``donors``: data sets whose ``with_mask`` faces lend their real masks (``draw_transplant``): each mask is cut
    from a donor with probability ``donor_share`` and drawn procedurally otherwise. Donor images are not grouped
    with the synthetic ones: give donors from the training part only (or sets kept out of every test)."""
    from maskwatch.synth.draw import (
        MIXES,
        OCCLUDERS,
        PALETTE,
        PATTERNS,
        PLACEMENTS,
        STYLES,
        draw_mask,
        draw_occluder,
        draw_transplant,
    )

    if per_face < 1:
        raise MaskwatchError("--per-face must be at least 1")
    if mix not in MIXES:
        raise MaskwatchError(f"--mix must be one of {', '.join(MIXES)}")
    if not (0 <= negatives < 1 and 0 <= incorrect < 1 and negatives + incorrect < 1):
        raise MaskwatchError("--negatives and --incorrect are shares in [0, 1) that sum to under 1")
    if not 0 < donor_share <= 1:
        raise MaskwatchError("--donor-share must be in (0, 1]")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise MaskwatchError(f"{out} exists and is not empty: choose a new --out folder")
    if detector is None:
        from maskwatch.detect.detector import CenterFace

        detector = CenterFace(box_fit=None)  # the mask geometry was fitted to the network's own boxes
    bundle = load_data([str(d) for d in dirs], margin=margin, min_box=min_box)
    faces = [s for s in bundle.samples if s.label == WITHOUT_MASK and not s.synthetic]
    if not faces:
        raise MaskwatchError(f"no without_mask faces in {', '.join(map(str, dirs))}")
    report = SynthReport(out, faces=len(faces))
    donor_pool = _Donors(donors, detector, margin, min_box) if donors else None
    if donor_pool is not None:
        report.donors = len(donor_pool.samples)
    rows: list[dict[str, object]] = []
    weights = MIXES[mix]

    def pick(rng: np.random.Generator, name: str, options: tuple[str, ...] | list[str]) -> str:
        w = weights.get(name)
        if not w:
            return str(rng.choice(options))
        p = np.array([w.get(o, 0.0) for o in options], float)
        return str(rng.choice(options, p=p / p.sum()))

    colours = sorted(PALETTE)
    for sample in track(faces, "drawing masks"):
        try:
            image = open_rgb(sample.path)
        except BadImageError as exc:
            report.skipped.append({"file": str(sample.path), "reason": exc.reason})
            continue
        found = find_face(detector, image, MIN_FACE)
        if found is None:
            report.skipped.append({"file": str(sample.path), "reason": "no face found"})
            continue
        box, landmarks = found
        key = _stable_key(sample)
        stem = hashlib.sha1(key.encode()).hexdigest()[:10]
        for k in range(per_face):
            rng = _rng(seed, key, k)
            roll = rng.random()
            base: dict[str, object] = {"source": str(sample.source), "source_id": sample.id, "seed": seed}
            drawings: list[tuple[str, Image.Image, dict[str, object]]] = []
            if roll < negatives:
                kind = str(rng.choice(OCCLUDERS))
                drawn, _ = draw_occluder(image, box, landmarks, kind=kind, rng=rng)
                meta = dict(label=WITHOUT_MASK, kind="occluder", style=kind, placement="", color="", pattern="")
                drawings.append(("n" if paired else "", drawn, meta))
            if paired or roll >= negatives:
                if paired:
                    placements = ["correct", pick(rng, "placement", PLACEMENTS[1:])]
                elif roll >= negatives + incorrect:
                    placements = ["correct"]
                else:
                    placements = [pick(rng, "placement", PLACEMENTS[1:])]
                style, pattern = pick(rng, "style", STYLES), pick(rng, "pattern", PATTERNS)
                colour = pick(rng, "color", colours)
                donor = donor_pool.pick(rng) if donor_pool is not None and rng.random() < donor_share else None
                # a pair starts drawing from one generator state: same mask, and only the placement is meant to differ
                state = rng.bit_generator.state
                for placement in placements:
                    rng.bit_generator.state = state
                    label = WITH_MASK if placement == "correct" else MASK_WORN_INCORRECTLY
                    if donor is not None:
                        drawn, _ = draw_transplant(
                            image,
                            box,
                            landmarks,
                            donor=donor.image,
                            donor_box=donor.box,
                            donor_landmarks=donor.landmarks,
                            placement=placement,
                            rng=rng,
                        )
                        meta = dict(label=label, kind="mask", style="transplant", placement=placement, color="")
                        meta.update(pattern="", donor=donor.id)
                    else:
                        drawn, _ = draw_mask(
                            image,
                            box,
                            landmarks,
                            style=style,
                            placement=placement,
                            color=PALETTE[colour],
                            pattern=pattern,
                            rng=rng,
                        )
                        meta = dict(label=label, kind="mask", style=style, placement=placement, color=colour)
                        meta["pattern"] = pattern
                    drawings.append(("c" if placement == "correct" else "w", drawn, meta))
            for tag, drawn, meta in drawings:
                row = {**base, **meta}
                suffix = f"{k}{tag}" if paired else str(k)  # unpaired names are those of earlier versions
                rel = Path(str(row["label"])) / f"{stem}-{suffix}.jpg"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(out / rel) as tmp:
                    drawn.save(tmp, format="JPEG", quality=92)
                row["file"] = rel.as_posix()
                rows.append(row)
                report.counts[str(row["label"])] += 1
    report.written = len(rows)
    if donor_pool is not None:
        report.donors_unusable = donor_pool.unusable
    if not rows:
        raise MaskwatchError(f"no face found in any of the {len(faces)} without_mask images")
    with atomic_path(out / MANIFEST) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(MANIFEST_COLUMNS))
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: str(r["file"])))
    write_text(out / MARKER, "made by maskwatch data synth; see manifest.csv\n")
    write_json(
        out / REPORT,
        {
            "faces": report.faces,
            "written": report.written,
            "counts": dict(report.counts),
            "per_face": per_face,
            "seed": seed,
            "mix": mix,
            "paired": paired,
            "negatives": negatives,
            "incorrect": incorrect,
            "donors": [str(d) for d in donors or []],
            "donor_share": donor_share if donors else None,
            "donor_faces": report.donors,
            "donors_unusable": report.donors_unusable,
            "skipped": report.skipped,
        },
    )
    return report


@dataclass
class Donor:
    id: str
    image: Image.Image
    box: np.ndarray
    landmarks: np.ndarray


class _Donors:
    """The with_mask faces of the donor sets; each is opened and its face found once, when first drawn."""

    def __init__(self, dirs: list[str | Path], detector, margin: float, min_box: int) -> None:
        bundle = load_data([str(d) for d in dirs], margin=margin, min_box=min_box)
        self.samples = [s for s in bundle.samples if s.label == WITH_MASK and not s.synthetic]
        if not self.samples:
            raise MaskwatchError(f"no with_mask faces to take masks from in {', '.join(map(str, dirs))}")
        self.detector = detector
        self.cache: dict[int, Donor] = {}  # usable donors, found once; an unusable one leaves the candidates
        self.unusable: list[dict[str, str]] = []
        self.candidates = list(range(len(self.samples)))  # donors not yet found unusable

    def _load(self, index: int) -> Donor | None:
        if index not in self.cache:
            sample = self.samples[index]
            found = None
            try:
                image = open_rgb(sample.path)
                found = find_face(self.detector, image, MIN_FACE)
                reason = "no face found"
            except BadImageError as exc:
                reason = exc.reason
            if found is None:
                self.unusable.append({"file": str(sample.path), "reason": reason})
                return None
            self.cache[index] = Donor(sample.id, image, *found)
        return self.cache[index]

    def pick(self, rng: np.random.Generator) -> Donor | None:
        """A usable donor drawn at random; one found unusable leaves the pool, so each is examined at most once and
        None (a mask drawn procedurally instead) means no donor is usable."""
        while self.candidates:
            at = int(rng.integers(len(self.candidates)))
            donor = self._load(self.candidates[at])
            if donor is not None:
                return donor
            self.candidates.pop(at)
        return None
