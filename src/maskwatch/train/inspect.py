"""``maskwatch data inspect``: what a data set holds and what is wrong with it, as JSON and pictures."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np

from maskwatch.data.dataset import load_data
from maskwatch.data.duplicates import DEFAULT_THRESHOLD, check_thresholds, find_duplicates
from maskwatch.evaluate.plots import image_grid, plot_class_balance
from maskwatch.io import write_json


def _stats(values: list[int]) -> dict:
    if not values:
        return {}
    a = np.asarray(values)
    return {"min": int(a.min()), "median": float(np.median(a)), "mean": round(float(a.mean()), 1), "max": int(a.max())}


def inspect_data(
    roots: list[str],
    out_dir: Path,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    margin: float = 0.15,
    min_box: int = 12,
    seed: int = 0,
    embed_threshold: float = 0.0,
) -> dict:
    """Count classes, measure sizes, list unreadable files and duplicate groups; write
    ``report.json``, ``class_balance.png``, ``samples.png`` and (when there are near-duplicate groups)
    ``duplicates.png`` into ``out_dir``; the report's ``pictures`` names the pictures written."""
    check_thresholds(threshold, embed_threshold)  # before the (long) loading and hashing
    bundle = load_data(roots, margin=margin, min_box=min_box)
    from maskwatch.train.embeddings import embedder

    dup = find_duplicates(
        bundle.samples,
        bundle.index,
        threshold,
        embed_threshold=embed_threshold,
        embedder=embedder() if embed_threshold else None,
    )
    label_of: dict[Path, str] = {}
    for s in bundle.samples:
        label_of.setdefault(s.source, s.label)
    sizes = [(s, bundle.index.get(s.source)) for s in bundle.samples]
    widths, heights, short = [], [], []
    for s, fact in sizes:
        if s.path == s.source and fact and fact.ok:
            widths.append(fact.width)
            heights.append(fact.height)
            short.append(min(fact.width, fact.height))
    boxes = [min(s.box[2] - s.box[0], s.box[3] - s.box[1]) for s in bundle.samples if s.box is not None]
    redundant_exact = sum(len(g) - 1 for g in dup.exact_groups)
    redundant_near = sum(len(g) - 1 for g in dup.near_groups)
    report = {
        "datasets": bundle.datasets,
        "images": len(bundle.samples),
        "counts": bundle.counts(),
        "counts_by_dataset": {d["root"]: d["counts"] for d in bundle.datasets},
        "image_size": {
            "width": _stats(widths),
            "height": _stats(heights),
            "short_side": _stats(short),
            "short_side_under_64": int(sum(v < 64 for v in short)),
            # VOC sets: the faces' box sizes in their scenes (the crops themselves are square)
            "face_box_short_side": _stats([round(b) for b in boxes]),
            "face_boxes_under_20": int(sum(b < 20 for b in boxes)),
        },
        "problems": [{"path": str(p.path), "reason": p.reason} for p in bundle.problems],
        "problem_counts": dict(Counter(p.reason.split(" (")[0] for p in bundle.problems)),
        "exact_duplicates": {
            "groups": len(dup.exact_groups),
            "redundant_files": redundant_exact,
            "list": [[str(p) for p in g] for g in dup.exact_groups],
        },
        "near_duplicates": {
            "hash": "imagehash.phash (64 bit)",
            "max_distance_bits": threshold,
            "embedding_min_cosine": embed_threshold or None,
            "groups": len(dup.near_groups),
            "redundant_files": redundant_near,
            "largest_group": max((len(g) for g in dup.near_groups), default=1),
            "list": [[str(p) for p in g] for g in dup.near_groups],
        },
        "cross_class_duplicates": dup.cross_class,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    by_set = {Path(root).name: counts for root, counts in report["counts_by_dataset"].items()}
    if len(by_set) > 1:
        by_set["all"] = report["counts"]
    plot_class_balance(by_set, out_dir / "class_balance.png")
    rng = random.Random(seed)
    items = []
    for label in bundle.labels:
        pool = [s for s in bundle.samples if s.label == label]
        for s in rng.sample(pool, min(8, len(pool))):
            items.append((s.path, f"{label}\n{s.path.name[:22]}", label))
    image_grid(items, out_dir / "samples.png", cols=8, title="random samples per class")
    groups = sorted(dup.near_groups, key=len, reverse=True)[:8]
    dup_items = []
    for k, group in enumerate(groups):
        for p in group[:4]:
            dup_items.append((p, f"group {k + 1} ({len(group)})\n{p.name[:22]}", label_of.get(p, "")))
    pictures = ["class_balance.png", "samples.png"]
    if dup_items:
        image_grid(dup_items, out_dir / "duplicates.png", cols=8, title="largest near-duplicate groups")
        pictures.append("duplicates.png")
    else:  # nothing to show: no picture, and none left from an earlier inspect into this folder either
        (out_dir / "duplicates.png").unlink(missing_ok=True)
    report["pictures"] = pictures
    write_json(out_dir / "report.json", report)
    return report
