"""Make ``assets/centerface-int8.onnx`` and ``assets/mask-classifier-int8.onnx``: the shipped float32 models
quantized to int8 with onnxruntime's static quantization (QDQ, per-channel int8 weights, uint8 activations).

Calibration data (never the held-out scenes, never face-mask-scenes-ilc, on which speed.md checks accuracy):

* CenterFace: 40 training scenes of face-mask-scenes-853 (every scene not in docs/results/heldout-scenes-853.txt,
  every 12th by name), each at the input the fast default gives it (``DetectorConfig()``: its long side times
  NET_FACE / SMALLEST_FACE, on multiples of 32) and at the video input of a 640x480 frame (320);
* the classifier: 200 face crops of face-mask-4094 (every 20th by name), preprocessed as the pipeline does.

CenterFace's opset (9) is raised to 13 first (per-channel QDQ needs it). The classifier keeps its metadata.
The result is deterministic for the same onnxruntime (1.32.0 here) and data.

    .venv/bin/python tools/quantize_models.py [--data ../shared/datasets]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

from maskwatch.data.images import IMAGE_EXTENSIONS, open_rgb, resize_rgb
from maskwatch.detect.defaults import NET_FACE, SMALLEST_FACE
from maskwatch.detect.detector import CENTERFACE_FILE, CENTERFACE_INT8_FILE
from maskwatch.runtime.classifiers import DEFAULT_INT8_FILE, DEFAULT_MODEL_FILE
from maskwatch.runtime.onnx import OnnxClassifier, preprocess

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "docs" / "results" / "heldout-scenes-853.txt"


class Batches(CalibrationDataReader):
    def __init__(self, name: str, batches: Iterator[np.ndarray]) -> None:
        self.name, self.batches = name, batches

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {self.name: batch}


def detector_inputs(scenes: list[Path]) -> Iterator[np.ndarray]:
    for path in scenes:
        image = np.asarray(open_rgb(path))
        height, width = image.shape[:2]
        for factor in (NET_FACE / SMALLEST_FACE, 320 / max(height, width)):
            size = (max(32, math.ceil(width * factor / 32) * 32), max(32, math.ceil(height * factor / 32) * 32))
            yield np.ascontiguousarray(resize_rgb(image, size).transpose(2, 0, 1)[None], dtype=np.float32)


def classifier_inputs(files: list[Path], classifier: OnnxClassifier) -> Iterator[np.ndarray]:
    mean, std = classifier.meta["mean"], classifier.meta["std"]
    for i in range(0, len(files), 8):
        crops = [Image.open(f).convert("RGB") for f in files[i : i + 8]]
        yield preprocess(crops, classifier.input_size, mean, std)


def quantize(source: Path, out: Path, reader: CalibrationDataReader, *, opset: int | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load(str(source))
        if opset and model.opset_import[0].version < opset:
            model = version_converter.convert_version(model, opset)
        raised = Path(tmp) / "model.onnx"
        onnx.save(model, str(raised))
        ready = Path(tmp) / "ready.onnx"
        quant_pre_process(str(raised), str(ready), skip_symbolic_shape=True)
        quantize_static(
            str(ready),
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{source.name} -> {out} ({out.stat().st_size:,} bytes, sha256 {digest})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets")
    args = parser.parse_args()
    heldout = {line.strip() for line in HELDOUT.read_text().splitlines() if line and not line.startswith("#")}
    images = sorted((args.data / "face-mask-scenes-853" / "images").iterdir())
    scenes = [p for p in images if p.name not in heldout and p.suffix.lower() in IMAGE_EXTENSIONS][::12][:40]
    quantize(CENTERFACE_FILE, CENTERFACE_INT8_FILE, Batches("input.1", detector_inputs(scenes)), opset=13)
    crops = sorted(p for p in (args.data / "face-mask-4094").rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    classifier = OnnxClassifier(DEFAULT_MODEL_FILE)
    reader = Batches("images", classifier_inputs(crops[::20][:200], classifier))
    quantize(DEFAULT_MODEL_FILE, DEFAULT_INT8_FILE, reader)
    OnnxClassifier(DEFAULT_INT8_FILE)  # loads, with its metadata


if __name__ == "__main__":
    main()
