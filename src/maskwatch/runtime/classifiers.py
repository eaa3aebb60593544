"""Choosing and loading a face classifier: the shipped default ONNX model, an exported ``.onnx`` file, or a
training checkpoint / run folder (PyTorch, or exported to ONNX on the fly); and classifying image files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from maskwatch.data.images import BadImageError, open_rgb
from maskwatch.errors import MaskwatchError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MODEL_FILE = ASSETS / "mask-classifier.onnx"
MODEL_CARD = ASSETS / "MODEL_CARD.md"
BACKENDS = ("auto", "onnx", "torch")


class FaceClassifier(Protocol):
    labels: list[str]
    backend: str

    def predict_images(self, images: Sequence[Image.Image | np.ndarray]) -> np.ndarray: ...


def default_model_path() -> Path:
    """``$MASKWATCH_MODEL`` when set, else the model shipped inside the package."""
    env = os.environ.get("MASKWATCH_MODEL")
    return Path(env).expanduser() if env else DEFAULT_MODEL_FILE


def load_classifier(model: str | Path | None = None, *, backend: str = "auto", device: str = "auto") -> FaceClassifier:
    """``model``: None (the default model), an ``.onnx`` file, or a checkpoint ``.pt`` / run folder.

    backend ``auto`` runs ONNX files with onnxruntime and checkpoints with PyTorch; ``onnx`` exports a checkpoint
    to ONNX first (cached beside maskwatch's other caches); ``torch`` needs a checkpoint.
    """
    if backend not in BACKENDS:
        raise MaskwatchError(f"--backend must be one of {', '.join(BACKENDS)}")
    env = os.environ.get("MASKWATCH_MODEL") if model in (None, "", "default") else None
    if env:  # $MASKWATCH_MODEL stands for --model: the same files and folders, and errors that name it
        path = Path(env).expanduser()
        if not path.exists():
            raise MaskwatchError(
                f"$MASKWATCH_MODEL={env}: not found (give an .onnx file, a checkpoint .pt or a run folder,"
                " or unset it for the shipped model)"
            )
        try:
            return _load(path, backend, device)
        except MaskwatchError as exc:
            raise MaskwatchError(f"$MASKWATCH_MODEL={env}: {exc}") from None
    if model in (None, "", "default"):
        if not DEFAULT_MODEL_FILE.is_file():
            raise MaskwatchError(
                f"the default model is missing: {DEFAULT_MODEL_FILE} (reinstall maskwatch or pass --model)"
            )
        return _load(DEFAULT_MODEL_FILE, backend, device)
    return _load(Path(model).expanduser(), backend, device)


def _load(path: Path, backend: str, device: str) -> FaceClassifier:
    """``load_classifier`` for a path given (by --model or $MASKWATCH_MODEL) or the shipped model."""
    if not path.exists():
        raise MaskwatchError(f"model not found: {path} (give an .onnx file, a checkpoint .pt or a run folder)")
    from maskwatch.runtime.onnx import OnnxClassifier

    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise MaskwatchError(f"{path} is an ONNX model: --backend torch needs a checkpoint (.pt) or run folder")
        return OnnxClassifier(path)
    if backend == "onnx":
        return OnnxClassifier(_exported(path))
    from maskwatch.runtime.predict import Classifier

    return Classifier.load(path, device)


def _exported(model: Path) -> Path:
    """The checkpoint exported to ONNX, cached by the checkpoint's size and modification time."""
    import hashlib

    from maskwatch.data.index import file_stamp
    from maskwatch.paths import cache_dir
    from maskwatch.runtime.checkpoint import resolve_model_path
    from maskwatch.runtime.onnx import export_onnx

    ckpt = resolve_model_path(model)
    key = hashlib.sha1(f"{ckpt.resolve()}|{file_stamp(ckpt)}".encode()).hexdigest()[:16]
    out = cache_dir() / "onnx" / f"{ckpt.stem}-{key}.onnx"
    if not out.is_file():
        export_onnx(ckpt, out)
    return out


def describe(classifier: FaceClassifier) -> dict[str, Any]:
    info = getattr(classifier, "describe", None)
    return info() if callable(info) else {"backend": classifier.backend, "labels": classifier.labels}


def prediction(source: str, labels: Sequence[str], row: np.ndarray) -> dict[str, Any]:
    """One classified image as ``{source, label, score, probs}`` (the classify JSON of the CLI and the API)."""
    k = int(row.argmax())
    probs = {label: float(v) for label, v in zip(labels, row, strict=True)}
    return {"source": source, "label": labels[k], "score": float(row[k]), "probs": probs}


Reframe = Callable[[Image.Image], tuple[Image.Image, list[float] | None]]


def classify_images(
    classifier: FaceClassifier, images: Sequence[Image.Image], sources: Sequence[str], reframe: Reframe | None = None
) -> list[dict[str, Any]]:
    """``prediction`` for each image (one batch). ``reframe`` (``detect.reframe.Reframer``): each image goes through
    it first, and each result also says whether it was cut again (``reframed``) and around which face box
    (``face_box``, pixels of the image)."""
    labels = classifier.labels
    boxes: list[list[float] | None] = [None] * len(images)
    if reframe is not None:
        framed = [reframe(im) for im in images]
        images, boxes = [f[0] for f in framed], [f[1] for f in framed]
    probs = classifier.predict_images(images) if len(images) else np.zeros((0, len(labels)))
    results = [prediction(src, labels, row) for src, row in zip(sources, probs, strict=True)]
    if reframe is not None:
        for result, box in zip(results, boxes, strict=True):
            result.update(reframed=box is not None, face_box=box)
    return results


def classify_paths(
    classifier: FaceClassifier, paths: Sequence[Path], batch_size: int = 32, reframe: Reframe | None = None
) -> Iterator[dict]:
    """One result per path, in order: ``classify_images``'s, or ``{source, error}`` for a file that could not be
    read or classified (one bad file never stops a run over many)."""
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        images, ok, results = [], [], {}
        for p in chunk:
            try:
                images.append(open_rgb(p))
                ok.append(p)
            except BadImageError as exc:
                results[p] = {"source": str(p), "error": exc.reason}
            except (OSError, ValueError, MemoryError) as exc:
                results[p] = {"source": str(p), "error": f"cannot read image ({_one_line(exc)})"}
        sources = [str(p) for p in ok]
        try:
            batch = classify_images(classifier, images, sources, reframe)
        except Exception:  # which image failed is found below, one at a time
            batch = [
                _classify_one(classifier, image, source, reframe) for image, source in zip(images, sources, strict=True)
            ]
        for p, result in zip(ok, batch, strict=True):
            results[p] = result
        for p in chunk:
            yield results[p]


def _classify_one(classifier: FaceClassifier, image: Image.Image, source: str, reframe: Reframe | None) -> dict:
    """``classify_images`` for one image, or ``{source, error}`` when it fails on it (out of memory, ...)."""
    try:
        return classify_images(classifier, [image], [source], reframe)[0]
    except Exception as exc:  # reported in the image's own result line
        return {"source": source, "error": f"cannot classify ({_one_line(exc)})"}


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
