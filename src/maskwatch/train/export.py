"""ONNX export of a trained classifier (optionally int8), and its parity check against the PyTorch model.

The file's metadata (``maskwatch`` key) carries what ``runtime.onnx.OnnxClassifier`` needs to run it without torch.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maskwatch.io import atomic_path
from maskwatch.runtime.onnx import META_KEY, OnnxClassifier, preprocess

OPSET = 17


def export_onnx(model_path: str | Path, out: str | Path, *, int8: bool = False) -> dict[str, Any]:
    """Export a checkpoint (or run folder) to ONNX; returns the metadata written into the file."""
    import torch

    from maskwatch.train.checkpoint import load_model

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

    from maskwatch.train.checkpoint import load_model

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


def exported_onnx(model: str | Path) -> Path:
    """The checkpoint (or run folder) exported to ONNX, cached by the checkpoint's path, size and modification time
    (``--backend onnx`` for a checkpoint)."""
    import hashlib

    from maskwatch.data.index import file_stamp
    from maskwatch.paths import cache_dir
    from maskwatch.train.checkpoint import resolve_model_path

    ckpt = resolve_model_path(model)
    key = hashlib.sha1(f"{ckpt.resolve()}|{file_stamp(ckpt)}".encode()).hexdigest()[:16]
    out = cache_dir() / "onnx" / f"{ckpt.stem}-{key}.onnx"
    if not out.is_file():
        export_onnx(ckpt, out)
    return out
