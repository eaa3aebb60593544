"""ONNX export of a trained classifier and the onnxruntime backend that runs it.

The exported file carries everything inference needs in its metadata (``maskwatch`` key, JSON): labels, input
size, mean/std, the source model's name, the calibration temperature (already folded into the graph's logits)
and, when exported from a run, where it came from. Input ``images`` (N, 3, S, S) float32 normalised; output
``logits`` (N, C), temperature-scaled.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maskwatch.errors import MaskwatchError
from maskwatch.io import atomic_path

META_KEY = "maskwatch"
OPSET = 17


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


def export_onnx(model_path: str | Path, out: str | Path, *, int8: bool = False) -> dict[str, Any]:
    """Export a checkpoint (or run folder) to ONNX; returns the metadata written into the file."""
    import torch

    from maskwatch.runtime.checkpoint import load_model

    net, meta = load_model(model_path)
    size = int(meta["input_size"])
    info = {
        "labels": list(meta["labels"]),
        "input_size": size,
        "mean": [float(v) for v in meta["mean"]],
        "std": [float(v) for v in meta["std"]],
        "model_name": meta["model_name"],
        "temperature": float(net.temperature),
        "pretrained": meta.get("pretrained"),
        "source": Path(meta["path"]).name if meta.get("path") else None,
        "int8": int8,
    }
    run_dir = Path(meta["path"]).parent
    if (run_dir / "run.json").is_file():
        info["run"] = json.loads((run_dir / "run.json").read_text())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    net.eval()
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but needs no onnxscript
        torch.onnx.export(
            net,
            (torch.zeros(1, 3, size, size),),
            str(tmp),
            dynamo=False,
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
        )
        import onnx

        proto = onnx.load(str(tmp))
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            float_file = Path(str(tmp) + ".float.onnx")
            onnx.save(proto, str(float_file))
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # onnxruntime logs an advice to pre-process through the root logger
            try:
                quantize_dynamic(str(float_file), str(tmp), weight_type=QuantType.QUInt8)
            finally:
                root.setLevel(level)
                float_file.unlink(missing_ok=True)
            proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps(info)
        proto.producer_name = "maskwatch"
        onnx.save(proto, str(tmp))
    return info


class OnnxClassifier:
    """A face classifier exported by ``export_onnx``, run with onnxruntime on the CPU."""

    backend = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
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


def _test_images(run_dir: Path, n: int) -> list[Image.Image]:
    """Up to ``n`` whole-image samples of a run's test split (class-folder images), spread over the list."""
    from maskwatch.data.images import BadImageError, open_rgb
    from maskwatch.data.split import split_rows

    paths = [Path(r["path"]) for r in split_rows(run_dir / "split", "test") if r.get("id") == r.get("path")]
    images: list[Image.Image] = []
    for path in paths[:: max(1, len(paths) // n)]:
        try:
            images.append(open_rgb(path))
        except BadImageError:
            continue
        if len(images) == n:
            break
    return images


def parity(model_path: str | Path, onnx_path: str | Path, n: int = 16, seed: int = 0) -> dict[str, Any]:
    """Compare the exported model with the PyTorch one (same preprocessing) on ``n`` images of the run's test split
    when they can be read (agreement there is what matters, above all for int8), else on random noise images."""
    import torch

    from maskwatch.runtime.checkpoint import load_model

    net, meta = load_model(model_path)
    clf = OnnxClassifier(onnx_path)
    images = _test_images(Path(meta["path"]).parent, n)
    inputs = "test images"
    if not images:
        rng = np.random.default_rng(seed)
        images = [Image.fromarray(rng.integers(0, 256, (64 + 8 * i, 64 + 8 * i, 3), np.uint8)) for i in range(n)]
        inputs = "random-noise images (no test images of the run found)"
    batch = preprocess(images, clf.input_size, clf.meta["mean"], clf.meta["std"])
    with torch.inference_mode():
        p_torch = net(torch.from_numpy(batch)).softmax(dim=1).numpy()
    p_onnx = clf.predict_images(images)
    return {
        "n": len(images),
        "inputs": inputs,
        "max_abs_prob": float(np.abs(p_torch - p_onnx).max()),
        "agree": int((p_torch.argmax(1) == p_onnx.argmax(1)).sum()),
    }
