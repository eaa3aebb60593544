"""The onnxruntime backend that runs an exported classifier (``train/export.py`` writes the file), and the session
settings every ONNX model of maskwatch (the face detector too) runs with.

The exported file carries everything inference needs in its metadata (``maskwatch`` key, JSON): labels, input
size, mean/std, the source model's name, the calibration temperature (already folded into the graph's logits)
and, when exported from a run, where it came from. Input ``images`` (N, 3, S, S) float32 normalised; output
``logits`` (N, C), temperature-scaled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maskwatch.errors import MaskwatchError

META_KEY = "maskwatch"


def preprocess(images: Sequence[Image.Image | np.ndarray], size: int, mean: Sequence[float], std: Sequence[float]):
    """Face images → (N, 3, size, size) float32: squash-resize (bilinear, antialiased: as training's
    evaluation transform does with PIL), scale to [0, 1], normalise."""
    batch = np.empty((len(images), size, size, 3), np.float32)
    for i, im in enumerate(images):
        pil = im if isinstance(im, Image.Image) else Image.fromarray(im)
        if pil.mode != "RGB":
            pil = pil.convert("RGB")
        batch[i] = np.asarray(pil.resize((size, size), Image.BILINEAR), np.float32)
    batch *= 1 / 255
    batch -= np.asarray(mean, np.float32)
    batch /= np.asarray(std, np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def onnx_threads() -> int:
    """Threads per onnxruntime session: ``$MASKWATCH_THREADS``, else the CPUs this process may use."""
    env = os.environ.get("MASKWATCH_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))  # honours containers and taskset
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def cpu_session(model: str | bytes, threads: int | None = None):
    """An onnxruntime CPU session (model file path or serialised bytes) with maskwatch's settings."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or onnx_threads()
    options.inter_op_num_threads = 1
    # Two sessions (detector, classifier) share the cores: idle threads must not spin and steal them.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OnnxClassifier:
    """A face classifier exported by ``export_onnx``, run with onnxruntime on the CPU."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        self.threads = threads
        if not self.path.is_file():
            raise MaskwatchError(f"model not found: {self.path}")
        try:
            self.session = cpu_session(str(self.path), threads)
        except Exception as exc:
            raise MaskwatchError(f"{self.path} is not a loadable ONNX model ({type(exc).__name__})") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        if not raw:
            raise MaskwatchError(f"{self.path} is an ONNX model but not a maskwatch classifier (no metadata)")
        self.meta: dict[str, Any] = json.loads(raw)
        self.labels: list[str] = list(self.meta["labels"])
        self.input_size = int(self.meta["input_size"])
        self.name = self.meta.get("model_name", self.path.stem)

    def logits(self, images: Sequence[Image.Image | np.ndarray]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, len(self.labels)), np.float32)
        batch = preprocess(images, self.input_size, self.meta["mean"], self.meta["std"])
        return self.session.run(["logits"], {"images": batch})[0]

    def predict_images(self, images: Sequence[Image.Image | np.ndarray]) -> np.ndarray:
        logits = self.logits(images).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "backend": self.backend, "model": self.name, "labels": self.labels}
