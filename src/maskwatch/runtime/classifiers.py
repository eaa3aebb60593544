"""Choosing and loading a face classifier for inference: the shipped default ONNX model or an exported ``.onnx``
file (training checkpoints are the training side's: ``train/predict.py``); and classifying image files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from maskwatch.data.images import BadImageError, decode_budget, decode_bytes, open_rgb
from maskwatch.errors import MaskwatchError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MODEL_FILE = ASSETS / "mask-classifier.onnx"
# the same model quantized to int8 (tools/quantize_models.py, MODEL_CARD.md): what the fast detection preset runs
DEFAULT_INT8_FILE = ASSETS / "mask-classifier-int8.onnx"
MODEL_CARD = ASSETS / "MODEL_CARD.md"


class FaceClassifier(Protocol):
    labels: list[str]
    backend: str

    def predict_images(self, images: Sequence[Image.Image | np.ndarray]) -> np.ndarray: ...


def model_spec(model: str | Path | None) -> tuple[Path, str | None]:
    """Where ``--model`` points: (path, the environment variable it came from or None). None, "" and "default" mean
    ``$MASKWATCH_MODEL`` when set, else the model shipped inside the package."""
    if model not in (None, "", "default"):
        return Path(model).expanduser(), None
    env = os.environ.get("MASKWATCH_MODEL")
    if env:
        return Path(env).expanduser(), "$MASKWATCH_MODEL"
    return DEFAULT_MODEL_FILE, None


def default_model_path() -> Path:
    """``$MASKWATCH_MODEL`` when set, else the model shipped inside the package."""
    return model_spec(None)[0]


def is_onnx(path: Path) -> bool:
    return path.suffix.lower() == ".onnx"


def load_classifier(model: str | Path | None = None) -> FaceClassifier:
    """An ONNX classifier: ``model`` is None (``$MASKWATCH_MODEL``, else the shipped model) or an ``.onnx`` file.

    Training checkpoints (``.pt``, run folders) need PyTorch: the command line loads them through the training
    side (``maskwatch.train.predict.checkpoint_classifier``); here they are refused in one line."""
    path, env = model_spec(model)
    where = f"{env}={path}: " if env else ""
    if not path.exists():
        if path == DEFAULT_MODEL_FILE:
            raise MaskwatchError(f"the default model is missing: {path} (reinstall maskwatch or pass --model)")
        hint = "or unset it for the shipped model" if env else "(give an .onnx file, a checkpoint .pt or a run folder)"
        raise MaskwatchError(f"{where}model not found: {path} {hint}")
    if not is_onnx(path):
        raise MaskwatchError(
            f"{where}{path} is a training checkpoint, not an .onnx file: export it (`maskwatch export {path}`) or run"
            " it from the command line, which loads checkpoints with PyTorch"
        )
    from maskwatch.runtime.onnx import OnnxClassifier

    try:
        return OnnxClassifier(path)
    except MaskwatchError as exc:
        if env:
            raise MaskwatchError(f"{where}{exc}") from None
        raise


def quantized_default(classifier: FaceClassifier) -> FaceClassifier:
    """The shipped classifier's int8 twin in place of the shipped float32 one; any other classifier as it is."""
    from maskwatch.runtime.onnx import OnnxClassifier

    path = getattr(classifier, "path", None)
    if not isinstance(classifier, OnnxClassifier) or path is None or not DEFAULT_INT8_FILE.is_file():
        return classifier
    if Path(path).resolve() != DEFAULT_MODEL_FILE.resolve():
        return classifier
    return OnnxClassifier(DEFAULT_INT8_FILE, classifier.threads)


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
    read or classified (one bad file never stops a run over many). A batch holds at most ``batch_size`` images and,
    together, no more decoded pixels than the decoding budget (``data.images.decode_budget``): 32 large photos are
    never in memory at once."""
    budget = decode_budget()
    pending: list[tuple[Path, Image.Image | None, dict | None]] = []  # (path, image, or its error result)
    held = 0  # bytes of the decoded images in pending
    for p in paths:
        image, error = _open(p)
        size = decode_bytes(*image.size) if image is not None else 0
        if pending and (held + size > budget or len(pending) >= batch_size):
            yield from _classify_batch(classifier, pending, reframe)
            pending, held = [], 0
        pending.append((p, image, error))
        held += size
    if pending:
        yield from _classify_batch(classifier, pending, reframe)


def _open(path: Path) -> tuple[Image.Image | None, dict | None]:
    try:
        return open_rgb(path), None
    except BadImageError as exc:
        return None, {"source": str(path), "error": exc.reason}
    except (OSError, ValueError, MemoryError) as exc:
        return None, {"source": str(path), "error": f"cannot read image ({_one_line(exc)})"}


def _classify_batch(
    classifier: FaceClassifier, pending: list[tuple[Path, Image.Image | None, dict | None]], reframe: Reframe | None
) -> Iterator[dict]:
    images = [image for _, image, _ in pending if image is not None]
    sources = [str(p) for p, image, _ in pending if image is not None]
    try:
        batch = classify_images(classifier, images, sources, reframe)
    except Exception:  # which image failed is found below, one at a time
        batch = [
            _classify_one(classifier, image, source, reframe) for image, source in zip(images, sources, strict=True)
        ]
    done = iter(batch)
    for _, image, error in pending:
        yield next(done) if image is not None else error  # type: ignore[misc]


def _classify_one(classifier: FaceClassifier, image: Image.Image, source: str, reframe: Reframe | None) -> dict:
    """``classify_images`` for one image, or ``{source, error}`` when it fails on it (out of memory, ...)."""
    try:
        return classify_images(classifier, [image], [source], reframe)[0]
    except Exception as exc:  # reported in the image's own result line
        return {"source": source, "error": f"cannot classify ({_one_line(exc)})"}


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
