"""``maskwatch evaluate-detect``: the whole pipeline (face detector + classifier) on Pascal VOC scenes.

Only held-out scenes should be scored: with ``split_from`` (a training run or its split folder), the scenes are
those whose every face crop sits in the chosen part of that split (``test`` by default), so no scene the model
trained or early-stopped on is counted. Scenes none of whose faces made it into the split (all under the crop
size limit) are left out too, and counted.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from maskwatch.data.images import BadImageError, open_rgb
from maskwatch.data.voc import is_voc_dir, read_voc
from maskwatch.detect.pipeline import Pipeline
from maskwatch.errors import MaskwatchError
from maskwatch.evaluate.detection import GroundTruth, Prediction, detection_metrics, plot_detection_report
from maskwatch.io import write_json, write_text
from maskwatch.progress import info, track
from maskwatch.runtime.classifiers import describe


def split_scenes(split_from: Path, subset: str = "test") -> tuple[set[str], set[str]]:
    """(scenes only in ``subset``, scenes seen in any other part) of a saved split, by image file name.

    VOC crops are named ``<scene image path>#<object index>`` in split files. ``split_from`` may also be a text
    file that lists scene image names, one per line (as written by ``write_scene_list``): those are the scenes."""
    if split_from.is_file():
        names = {line.strip() for line in split_from.read_text(encoding="utf-8").splitlines()}
        return {n for n in names if n and not n.startswith("#")}, set()
    folder = split_from / "split" if (split_from / "split").is_dir() else split_from
    if subset not in ("train", "val", "test"):
        raise MaskwatchError("--subset must be train, val or test")
    if not (folder / f"{subset}.csv").is_file():
        raise MaskwatchError(
            f"no saved split in {split_from} (expected {folder / (subset + '.csv')}, or a text file of scene names)"
        )
    inside: set[str] = set()
    elsewhere: set[str] = set()
    for part in ("train", "val", "test"):
        path = folder / f"{part}.csv"
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if "#" not in row["id"]:
                    continue
                scene = Path(row["id"].rsplit("#", 1)[0]).name
                (inside if part == subset else elsewhere).add(scene)
    return inside - elsewhere, elsewhere


def write_scene_list(path: Path, scenes: set[str], header: str) -> None:
    """Save a scene list (``# header`` then one image name per line) for ``--split-from FILE``."""
    write_text(path, f"# {header}\n" + "".join(f"{name}\n" for name in sorted(scenes)))


def evaluate_scenes(
    voc_dir: Path,
    pipeline: Pipeline,
    out: Path,
    *,
    split_from: Path | None = None,
    subset: str = "test",
    limit: int | None = None,
) -> dict[str, Any]:
    """Run the pipeline on every (held-out) scene, score it against the boxes; write metrics.json, plots and
    predictions.jsonl to ``out``; return the metrics."""
    voc_dir = Path(voc_dir)
    if not is_voc_dir(voc_dir):
        raise MaskwatchError(f"{voc_dir} is not a Pascal VOC folder (annotations/*.xml + images/)")
    scenes, problems = read_voc(voc_dir)
    selection: dict[str, Any] = {"split_from": None, "subset": None, "scenes_total": len(scenes)}
    if split_from is not None:
        keep, seen = split_scenes(Path(split_from), subset)
        before = len(scenes)
        scenes = [s for s in scenes if s.image_path.name in keep]
        selection.update(
            split_from=str(split_from),
            subset=subset,
            scenes_in_subset=len(scenes),
            scenes_in_other_parts=len(seen),
            scenes_in_no_part=before - len(scenes) - len(seen),
        )
        if not scenes:
            raise MaskwatchError(f"no scene of {voc_dir} is in the {subset} part of {split_from}")
    if limit:
        scenes = scenes[:limit]
    labels = pipeline.labels
    gts: list[GroundTruth] = []
    preds: list[Prediction] = []
    skipped: list[dict[str, str]] = [{"file": str(p), "reason": r} for p, r in problems]
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for scene in track(scenes, f"detecting faces in {voc_dir.name}"):
        try:
            image = np.asarray(open_rgb(scene.image_path))
        except BadImageError as exc:
            skipped.append({"file": str(scene.image_path), "reason": exc.reason})
            continue
        image_id = scene.image_path.name
        gts.append(
            GroundTruth(
                image_id,
                np.array([o.box for o in scene.objects], np.float32).reshape(-1, 4),
                [o.label for o in scene.objects],
            )
        )
        result = pipeline.process(image, image_id)
        lines.append(json.dumps(result.to_json()))
        probs = np.array([[f.probs[label] for label in labels] for f in result.faces], np.float32)
        preds.append(
            Prediction(
                image_id,
                np.array([f.box for f in result.faces], np.float32).reshape(-1, 4),
                np.array([f.det_score for f in result.faces], np.float32),
                [f.label for f in result.faces],
                np.array([f.score for f in result.faces], np.float32),
                probs.reshape(-1, len(labels)),
            )
        )
    unknown = sorted({label for g in gts for label in g.labels} - set(labels))
    if unknown:
        info(f"[yellow]ground-truth labels the model does not know are scored as misses:[/] {', '.join(unknown)}")
    metrics = detection_metrics(gts, preds, labels)
    metrics["selection"] = selection
    metrics["skipped"] = skipped
    metrics["pipeline"] = {
        "detector": getattr(pipeline.detector, "describe", lambda: {"name": pipeline.detector.name})(),
        "classifier": describe(pipeline.classifier),
        "margin": pipeline.margin,
    }
    write_json(out / "metrics.json", metrics)
    write_text(out / "predictions.jsonl", "\n".join(lines) + ("\n" if lines else ""))
    plot_detection_report(metrics, out)
    return metrics
