"""``maskwatch evaluate``: a trained model on data sets (all of them, or one part of a saved split)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image

from maskwatch.data.dataset import load_data
from maskwatch.data.split import load_split
from maskwatch.errors import MaskwatchError
from maskwatch.evaluate.report import write_problems, write_report
from maskwatch.progress import info
from maskwatch.runtime.checkpoint import load_model
from maskwatch.runtime.predict import predict_samples


def evaluate_model(
    model: str | Path,
    data: list[str],
    *,
    out: Path | None = None,
    split_from: Path | None = None,
    subset: str = "test",
    batch_size: int = 64,
    device: str = "auto",
    margin: float = 0.15,
    min_box: int = 12,
    workers: int | None = None,
    reframe: bool = False,
) -> dict:
    """``reframe``: each crop goes through ``detect.reframe.Reframer`` first (as ``maskwatch classify``); the report
    then says how many were cut again."""
    net, meta = load_model(model)
    labels = meta["labels"]
    bundle = load_data(data, margin=margin, min_box=min_box)
    samples = bundle.samples
    described = {"kind": "all", "data": [d["root"] for d in bundle.datasets]}
    if split_from is not None:
        if subset not in ("train", "val", "test"):
            raise MaskwatchError("--subset must be train, val or test")
        split = load_split(Path(split_from), samples)
        samples = split.parts()[subset]
        described = {**split.summary(), "evaluated": subset, "data": described["data"]}
    unknown = Counter(s.label for s in samples if s.label not in labels)
    if unknown:
        info(f"[yellow]left out (the model does not know these labels): {dict(unknown)}")
    samples = [s for s in samples if s.label in labels]
    if not samples:
        raise MaskwatchError(f"no images with the model's labels ({', '.join(labels)}) in {' '.join(data)}")
    described.update(
        {
            "images": len(samples),
            "counts": dict(Counter(s.label for s in samples)),
            "left_out": dict(unknown),
            "skipped_files": len(bundle.problems),  # listed in problems.csv
            "model": meta["path"],
            "crops": {"margin": margin, "min_box": min_box},  # how VOC faces were cropped (class folders: as is)
        }
    )
    if out is None:
        stem = (
            Path(meta["path"]).parent.name
            if Path(meta["path"]).name in ("best.pt", "last.pt")
            else Path(meta["path"]).stem
        )
        out = Path("runs") / "evaluate" / f"{stem}-{'-'.join(Path(d).name for d in data)}"
    # the files left out, on the console and in problems.csv, before the (long) prediction starts
    write_problems(Path(out), [(p.path, p.reason) for p in bundle.problems])
    prepare = None
    if reframe:
        from maskwatch.detect.reframe import Reframer

        reframer, cut = Reframer(), [0]

        def prepare(image: Image.Image) -> Image.Image:
            framed, box = reframer(image)
            cut[0] += box is not None
            return framed

        workers = 0  # the detector runs in this process (and counts here)
    probs = predict_samples(
        net, samples, labels, batch_size=batch_size, device=device, workers=workers, prepare=prepare
    )
    if reframe:
        described["reframe"] = {**reframer.describe(), "reframed": cut[0]}
    metrics = write_report(Path(out), samples, labels, probs, described, key="test")
    return {"metrics": metrics, "out": Path(out)}
