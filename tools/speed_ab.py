"""Accuracy of the fast detection defaults against ``--accurate`` (the defaults before issue 23), each change alone
and together, on the same scenes, with a paired bootstrap over the scenes (docs/results/speed.md).

Sets: face-mask-scenes-ilc (real web photos, used in no training and no calibration) and the held-out scenes of
face-mask-scenes-853 (docs/results/heldout-scenes-853.txt). Figures: face recall at IoU 0.3 (all faces, and by
the face's size sqrt(w*h) in the photo: under 24 px, 24-32, 32-96, 96 and up), mask-vs-no-mask accuracy of the
matched faces (``evaluate.detection``'s: IoU 0.5 matches), and each one's change from the first configuration with
its 95% interval (1000 paired draws of scenes).

    .venv/bin/python tools/speed_ab.py [--data ../shared/datasets] [--out runs/speed-ab] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from maskwatch.detect.config import DetectorConfig
from maskwatch.detect.pipeline import load_pipeline
from maskwatch.evaluate.detection import MASKED, box_size, match_faces
from maskwatch.evaluate.scenes import SceneScores, evaluate_scenes

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {  # the first is the baseline of every change
    "accurate (before)": DetectorConfig.accurate(),
    "sizing only": DetectorConfig(int8=False),
    "int8 only": DetectorConfig.accurate(int8=True),
    "fast (default)": DetectorConfig(),
}
BINS = {"<24": (0, 24), "24-32": (24, 32), "32-96": (32, 96), ">=96": (96, 1e9)}


def scene_counts(scores: SceneScores) -> np.ndarray:
    """Per scene: [faces >= 24 px, found (IoU 0.3), faces, found, mask-vs-not right, matched (IoU 0.5),
    then faces and found per size bin]."""
    rows = []
    for g, p in zip(scores.gts, scores.preds, strict=True):
        gt = np.asarray(g.boxes, np.float64).reshape(-1, 4)
        pred = np.asarray(p.boxes, np.float64).reshape(-1, 4)
        m30 = match_faces(gt, pred, p.det_scores, 0.3)
        m50 = match_faces(gt, pred, p.det_scores, 0.5)
        found = np.zeros(len(gt), bool)
        found[m30[m30 >= 0]] = True
        sizes = box_size(gt)
        pairs = [(g.labels[gi], p.labels[pi]) for pi, gi in enumerate(m50.tolist()) if gi >= 0]
        right = sum((t in MASKED) == (q in MASKED) for t, q in pairs)
        row = [int((sizes >= 24).sum()), int(found[sizes >= 24].sum()), len(gt), int(found.sum()), right, len(pairs)]
        for lo, hi in BINS.values():
            inside = (sizes >= lo) & (sizes < hi)
            row += [int(inside.sum()), int(found[inside].sum())]
        rows.append(row)
    return np.array(rows, dtype=np.int64)


def figures(counts: np.ndarray) -> dict[str, float]:
    total = counts.sum(axis=0)
    ratio = lambda a, b: float(total[a] / total[b]) if total[b] else float("nan")  # noqa: E731
    out = {"recall30 >=24px": ratio(1, 0), "recall30": ratio(3, 2), "mask_vs_not": ratio(4, 5)}
    for i, name in enumerate(BINS):
        out[f"recall30 {name}"] = ratio(7 + 2 * i, 6 + 2 * i)
    return out


def bootstrap(base: np.ndarray, other: np.ndarray, draws: int = 1000, seed: int = 0) -> dict[str, list[float]]:
    """95% interval of each figure's change (other - base), scenes drawn with replacement, the same for both."""
    rng = np.random.default_rng(seed)
    n = len(base)
    changes: dict[str, list[float]] = {}
    for _ in range(draws):
        pick = rng.integers(0, n, n)
        a, b = figures(base[pick]), figures(other[pick])
        for key in a:
            changes.setdefault(key, []).append(b[key] - a[key])
    return {k: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))] for k, v in changes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=Path("runs/speed-ab"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N scenes of each set (a quick run)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="which of: " + ", ".join(CONFIGS))
    args = parser.parse_args()
    os.environ.setdefault("MASKWATCH_QUIET", "1")
    chosen = [c.strip() for c in args.configs.split(",")]
    sets = {
        "face-mask-scenes-ilc": (args.data / "face-mask-scenes-ilc", None),
        "face-mask-scenes-853 held-out": (
            args.data / "face-mask-scenes-853",
            ROOT / "docs" / "results" / "heldout-scenes-853.txt",
        ),
    }
    report: dict[str, dict] = {}
    for set_name, (voc, split) in sets.items():
        counts = {}
        for name in chosen:
            out = args.out / set_name.split()[0] / name.split()[0]
            scores = evaluate_scenes(voc, load_pipeline(config=CONFIGS[name]), out, split_from=split, limit=args.limit)
            counts[name] = scene_counts(scores)
        base = chosen[0]
        report[set_name] = {"scenes": len(counts[base]), "faces": int(counts[base][:, 2].sum())}
        print(f"\n{set_name}: {report[set_name]['scenes']} scenes, {report[set_name]['faces']} faces")
        for name in chosen:
            fig = figures(counts[name])
            row: dict = {"figures": fig}
            text = ", ".join(f"{k} {v:.4f}" for k, v in fig.items())
            print(f"  {name}: {text}")
            if name != base:
                ci = bootstrap(counts[base], counts[name])
                row["change_ci95"] = {k: [fig[k] - figures(counts[base])[k], *ci[k]] for k in fig}
                print(
                    "    change from "
                    + base
                    + ": "
                    + ", ".join(f"{k} {c:+.4f} [{lo:+.4f}, {hi:+.4f}]" for k, (c, lo, hi) in row["change_ci95"].items())
                )
            report[set_name][name] = row
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed_ab.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
