"""``maskwatch evaluate-detect``: the whole pipeline (face detector + classifier) on Pascal VOC scenes.

Only held-out scenes should be scored: with ``split_from`` (a training run or its split folder), the scenes are
those whose every face crop sits in the chosen part of that split (``test`` by default), so no scene the model
trained or early-stopped on is counted. Scenes none of whose faces made it into the split (all under the crop
size limit) are left out too, and counted.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from maskwatch.data.images import BadImageError, open_rgb
from maskwatch.data.voc import VocImage, is_voc_dir, read_voc
from maskwatch.detect.pipeline import Pipeline
from maskwatch.errors import MaskwatchError
from maskwatch.evaluate.detection import GroundTruth, Prediction, detection_metrics, plot_detection_report
from maskwatch.evaluate.report import write_problems
from maskwatch.io import write_json, write_text
from maskwatch.progress import info, shown, track
from maskwatch.runtime.classifiers import describe


def split_scenes(split_from: Path, subset: str = "test") -> tuple[set[str], set[str]]:
    """(scenes only in ``subset``, scenes seen in any other part) of a saved split, by image file name.

    VOC crops are named ``<scene image path>#<object index>`` in split files. ``split_from`` may also be a text
    file that lists scene image names, one per line (as written by ``write_scene_list``): those are the scenes,
    returned as written (``evaluate_scenes`` also takes a listed name without its extension as that scene)."""
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


@dataclass
class SceneScores:
    """What ``evaluate_scenes`` measured (``metrics``, as in metrics.json) and the ground truth and predictions,
    scene by scene, it came from (``compare_scene_metrics`` draws scenes from them)."""

    metrics: dict[str, Any]
    gts: list[GroundTruth]
    preds: list[Prediction]


def evaluate_scenes(
    voc_dir: Path,
    pipeline: Pipeline,
    out: Path,
    *,
    split_from: Path | None = None,
    subset: str = "test",
    limit: int | None = None,
) -> SceneScores:
    """Run the pipeline on every (held-out) scene, score it against the boxes; write metrics.json, plots and
    predictions.jsonl to ``out``."""
    voc_dir = Path(voc_dir)
    if not is_voc_dir(voc_dir):
        raise MaskwatchError(f"{voc_dir} is not a Pascal VOC folder (annotations/*.xml + images/)")
    scenes, problems = read_voc(voc_dir)
    annotations = {s.annotation_path for s in scenes}  # read: a problem with one of them is a box left out
    selection: dict[str, Any] = {"split_from": None, "subset": None, "scenes_total": len(scenes)}
    if split_from is not None:
        keep, seen = split_scenes(Path(split_from), subset)
        before = len(scenes)
        listed = Path(split_from).is_file()  # a list typed by hand: a name may lack its extension
        scenes = [s for s in scenes if s.image_path.name in keep or (listed and s.image_path.stem in keep)]
        selection.update(
            split_from=str(split_from),
            subset=subset,
            scenes_in_subset=len(scenes),
            scenes_in_other_parts=len(seen),
            scenes_in_no_part=before - len(scenes) - len(seen),
        )
        if listed:
            found = {s.image_path.name for s in scenes} | {s.image_path.stem for s in scenes}
            missing = sorted(keep - found)
            selection["listed_not_found"] = missing
            if not keep:
                raise MaskwatchError(f"{split_from} lists no scene names (one image name a line)")
            if not scenes:
                raise MaskwatchError(
                    f"none of the {len(keep)} scene names in {split_from} is a scene of {voc_dir}"
                    f" (e.g. {', '.join(missing[:3])})"
                )
            if missing:
                info(
                    f"[yellow]scene names in {shown(split_from)} that match no scene of {shown(voc_dir)}"
                    f" ({len(missing)} of {len(keep)}, left out):[/] {shown(', '.join(missing[:5]))}"
                    + (f", ... {len(missing) - 5} more (listed_not_found in metrics.json)" if len(missing) > 5 else "")
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
    for scene in track(scenes, f"detecting faces in {shown(voc_dir.name)}"):
        try:
            image = np.asarray(open_rgb(scene.image_path))
        except BadImageError as exc:
            skipped.append({"file": str(scene.image_path), "reason": exc.reason})
            problems.append((scene.image_path, exc.reason))
            continue
        image_id = scene.image_path.name
        gts.append(_ground_truth(scene))
        faces = pipeline.faces(image)
        lines.append(json.dumps(pipeline.result(image, faces, image_id).to_json()))
        preds.append(
            Prediction(
                image_id,
                faces.boxes,
                faces.scores,
                [labels[k] for k in faces.label_index().tolist()],
                faces.label_score(),
                faces.probs.reshape(-1, len(labels)),
            )
        )
    unknown = sorted({label for g in gts for label in g.labels} - set(labels))
    if unknown:
        names = shown(", ".join(unknown))
        info(f"[yellow]ground-truth labels the model does not know are scored as misses:[/] {names}")
        # no probability for them (NaN): their faces count as wrong labels, their classes get no box and AP 0
        preds = [replace(p, probs=np.pad(p.probs, ((0, 0), (0, len(unknown))), constant_values=np.nan)) for p in preds]
    metrics = detection_metrics(gts, preds, [*labels, *unknown])
    metrics["selection"] = selection
    metrics["skipped"] = skipped
    _report_skipped(out, problems, annotations)
    metrics["pipeline"] = {
        "detector": getattr(pipeline.detector, "describe", lambda: {"name": pipeline.detector.name})(),
        "classifier": describe(pipeline.classifier),
        "margin": pipeline.margin,
    }
    write_json(out / "metrics.json", metrics)
    write_text(out / "predictions.jsonl", "\n".join(lines) + ("\n" if lines else ""))
    plot_detection_report(metrics, out)
    return SceneScores(metrics, gts, preds)


def _report_skipped(out: Path, problems: list[tuple[Path, str]], annotations: set[Path]) -> None:
    """problems.csv and a console line: the annotation files and images left out, and the boxes left out of
    scenes otherwise read (their annotation file is in ``annotations``)."""
    boxes = sum(p in annotations for p, _ in problems)
    files = len(problems) - boxes
    parts = [f"{files} file{'s' if files != 1 else ''}"] if files else []
    parts += [f"{boxes} box{'es' if boxes != 1 else ''}"] if boxes else []
    write_problems(out, problems, what=" and ".join(parts) + " skipped")


def _ground_truth(scene: VocImage) -> GroundTruth:
    boxes = np.array([o.box for o in scene.objects], np.float32).reshape(-1, 4)
    return GroundTruth(scene.image_path.name, boxes, [o.label for o in scene.objects])


def read_scene_report(report: Path, voc_dir: Path) -> SceneScores:
    """An ``evaluate_scenes`` report folder read back: its metrics.json, and the ground truth (from the VOC set it
    ran on) and predictions (predictions.jsonl) of its scenes. The JSON keeps probabilities to 4 decimals, so an AP
    recomputed from them can differ a little from metrics.json where rounding ties scores."""
    report = Path(report)
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    labels = list(metrics["ap50"])  # the classifier's labels, then ground-truth labels it does not know
    scenes = {s.image_path.name: s for s in read_voc(Path(voc_dir))[0]}
    gts: list[GroundTruth] = []
    preds: list[Prediction] = []
    for line in (report / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["source"] not in scenes:
            raise MaskwatchError(f"{report}: scene {r['source']} is not in {voc_dir}")
        faces = r["faces"]
        gts.append(_ground_truth(scenes[r["source"]]))
        preds.append(
            Prediction(
                r["source"],
                np.array([f["box"] for f in faces], np.float32).reshape(-1, 4),
                np.array([f["det_score"] for f in faces], np.float32),
                [f["label"] for f in faces],
                np.array([f["score"] for f in faces], np.float32),
                np.array([[f["probs"].get(c, np.nan) for c in labels] for f in faces], np.float32).reshape(
                    -1, len(labels)
                ),
            )
        )
    return SceneScores(metrics, gts, preds)


def model_names(models: list[str | None]) -> list[str]:
    """Short unique names for a report: a run folder's name, a file's stem, ``shipped`` for the default model."""
    names: list[str] = []
    for model in models:
        if model is None:
            base = "shipped"
        else:
            path = Path(model)
            base = path.name if path.is_dir() else path.stem
            if base in ("best", "last", "model") and path.parent.name:
                base = path.parent.name
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def compare_scene_metrics(
    scores: dict[str, SceneScores], out: Path, *, draws: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Side by side: the metrics of several models on the same scenes, and each one's change from the first
    (the baseline). Writes comparison.json, comparison.md and comparison.png (AP50 per class) to ``out``.

    With ``draws`` > 0, each change in mAP50 and AP50 also gets its 95% interval from a paired bootstrap over the
    scenes (``evaluate.bootstrap``): how much of it the choice of scenes alone explains."""
    results = {name: s.metrics for name, s in scores.items()}
    names = list(results)
    base = results[names[0]]
    selections = {json.dumps(m.get("selection"), sort_keys=True) for m in results.values()}
    counts = {json.dumps(m["counts"], sort_keys=True) for m in results.values()}
    if len(selections) != 1 or len(counts) != 1:
        raise MaskwatchError("the models were not scored on the same scenes; cannot put them side by side")
    labels = list(base["ap50"])
    rows = []
    for name in names:
        m = results[name]
        row: dict[str, Any] = {
            "model": name,
            "map50": m["map50"],
            **{f"ap50_{label}": m["ap50"].get(label) for label in labels},
            "label_accuracy": m["label_accuracy"],
            "mask_vs_not_accuracy": m["mask_vs_not_accuracy"],
            "face_recall_iou50": m["faces"]["iou50"]["recall"],
            **{f"map50_{size}": m["by_size"][size]["map50"] for size in m["by_size"]},
        }
        rows.append(row)
    keys = [k for k in rows[0] if k != "model"]
    for row in rows:
        row["delta"] = {
            k: None if row[k] is None or rows[0][k] is None else round(row[k] - rows[0][k], 4) for k in keys
        }
    summary: dict[str, Any] = {"baseline": names[0], "labels": labels, "counts": base["counts"], "rows": rows}
    bootstrap_keys = ["map50", *(f"ap50_{label}" for label in labels)]
    if draws > 0 and len(names) > 1:
        from maskwatch.evaluate.bootstrap import bootstrap_ap_change

        summary["bootstrap"] = {"draws": draws, "seed": seed, "unit": "scene", "interval": 0.95}
        first = scores[names[0]]
        for name, row in zip(names[1:], rows[1:], strict=True):
            change = bootstrap_ap_change(first.gts, first.preds, scores[name].preds, labels, draws=draws, seed=seed)
            row["ci95"] = {
                key: change["map50" if key == "map50" else key.removeprefix("ap50_")] for key in bootstrap_keys
            }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "comparison.json", summary)
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    signed = lambda v: "" if v is None else f" ({v:+.4f})"  # noqa: E731
    lines = [
        f"Same {base['counts']['images']} scenes, {base['counts']['gt_faces_total']} faces; "
        f"change from `{names[0]}` in brackets.",
        "",
        "| metric | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for k in keys:
        cells = [fmt(r[k]) + (signed(r["delta"][k]) if i else "") for i, r in enumerate(rows)]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    if "bootstrap" in summary:
        interval = lambda c: (  # noqa: E731
            "n/a" if c["low"] is None else f"{c['change']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]"
        )
        lines += [
            "",
            f"Change from `{names[0]}` with its 95% interval (paired bootstrap over the scenes, {draws} draws): an"
            " interval that spans 0 is a change the choice of scenes alone could make.",
            "",
            "| model | " + " | ".join(bootstrap_keys) + " |",
            "|---|" + "---|" * len(bootstrap_keys),
        ]
        for row in rows[1:]:
            lines.append(f"| `{row['model']}` | " + " | ".join(interval(row["ci95"][k]) for k in bootstrap_keys) + " |")
    write_text(out / "comparison.md", "\n".join(lines) + "\n")
    _plot_comparison(rows, labels, out / "comparison.png")
    return summary


def _plot_comparison(rows: list[dict], labels: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from maskwatch.io import save_figure

    groups = ["mAP50", *labels]
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(groups), 3.8))
    for i, row in enumerate(rows):
        values = [row["map50"], *(row[f"ap50_{label}"] for label in labels)]
        xs = [g + (i - (len(rows) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, [v or 0 for v in values], width, label=row["model"])
        ax.bar_label(bars, labels=["n/a" if v is None else f"{v:.2f}" for v in values], fontsize=7)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("AP50")
    ax.set_title("Held-out scenes: AP50 per class")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(path, fig)
