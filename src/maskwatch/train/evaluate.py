"""``maskwatch evaluate``: a trained model on data sets (all of them, or one part of a saved split)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image
from rich.markup import escape

from maskwatch.data.dataset import Sample, load_data
from maskwatch.data.split import SPLITS, load_split, split_rows
from maskwatch.errors import MaskwatchError
from maskwatch.evaluate.report import write_problems, write_report
from maskwatch.progress import info
from maskwatch.train.checkpoint import load_model, resolve_model_path
from maskwatch.train.predict import predict_samples


def saved_split_of(model: str | Path) -> Path | None:
    """The split saved with a run (``RUN/split``) when ``model`` is a run folder or a checkpoint inside one."""
    folder = resolve_model_path(model).parent / "split"
    return folder if (folder / "split.json").is_file() else None


def _seen_in_training(folder: Path, samples: list[Sample]) -> dict[str, int]:
    """How many of ``samples`` the saved split ``folder`` put in its train and val parts."""
    ids = {s.id for s in samples}
    return {part: len(ids & {row["id"] for row in split_rows(folder, part)}) for part in ("train", "val")}


def evaluate_model(
    model: str | Path,
    data: list[str],
    *,
    out: Path | None = None,
    split_from: Path | None = None,
    subset: str | None = None,
    batch_size: int = 64,
    device: str = "auto",
    margin: float = 0.15,
    min_box: int = 12,
    workers: int | None = None,
    reframe: bool = False,
) -> dict:
    """Score ``model`` on ``data``: every image, or with ``subset`` (train, val or test) one part of a saved split.

    The split is ``split_from`` (then ``subset`` defaults to test); without it, a ``subset`` takes the split saved
    with the model's run, and is refused when the model has none. Scoring a run on images its split used for
    training or validation warns: those metrics are optimistic.

    ``reframe``: each crop goes through ``detect.reframe.Reframer`` first (as ``maskwatch classify``); the report
    then says how many were cut again."""
    if subset is not None and subset not in SPLITS:
        raise MaskwatchError(f"--subset must be train, val or test (got {subset})")
    saved = saved_split_of(model)
    if split_from is None and subset is not None:
        if saved is None:
            raise MaskwatchError(
                f"--subset needs --split-from RUN (the saved split to take the {subset} part of): "
                f"no split is saved with {model}"
            )
        split_from = saved
        info(
            f"--subset {subset}: using the split saved with the model ({escape(str(saved))}); "
            "--split-from picks another"
        )
    net, meta = load_model(model)
    labels = meta["labels"]
    bundle = load_data(data, margin=margin, min_box=min_box)
    samples = bundle.samples
    described = {"kind": "all", "data": [d["root"] for d in bundle.datasets]}
    if split_from is not None:
        subset = subset or "test"
        split = load_split(Path(split_from), samples)
        samples = split.parts()[subset]
        described = {**split.summary(), "evaluated": subset, "data": described["data"]}
    unknown = Counter(s.label for s in samples if s.label not in labels)
    if unknown:
        info(f"[yellow]left out (the model does not know these labels): {dict(unknown)}")
    samples = [s for s in samples if s.label in labels]
    if not samples:
        raise MaskwatchError(f"no images with the model's labels ({', '.join(labels)}) in {' '.join(data)}")
    own = saved is not None and split_from is not None and _same_split(Path(split_from), saved)
    if saved is not None and not own:  # a part of the model's own split was asked for by name: nothing to warn
        seen = _seen_in_training(saved, samples)
        if any(seen.values()):
            described["seen_in_training"] = seen
            used = [f"{seen['train']} trained this model"] * bool(seen["train"])
            used += [f"{seen['val']} picked its best epoch and temperature (validation)"] * bool(seen["val"])
            hint = "; --subset test scores only its held-out test part" if split_from is None else ""
            info(
                f"[yellow]warning: of these {len(samples)} images, {' and '.join(used)} (split saved in "
                f"{escape(str(saved))}): metrics on them are optimistic{hint}"
            )
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


def _same_split(given: Path, saved: Path) -> bool:
    """Whether ``--split-from`` names the split saved with the model (its run folder or the split folder itself)."""
    folder = given / "split" if (given / "split").is_dir() else given
    return folder.resolve() == saved.resolve()
