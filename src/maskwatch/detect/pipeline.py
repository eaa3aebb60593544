"""The one flow every entry point uses: image → faces → square crops → classifier (one batch) → ``FrameResult``.

``FrameResult.to_json()`` is the JSON Lines schema of ``maskwatch detect --jsonl`` and of the web API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from maskwatch.data.crops import crop_square
from maskwatch.detect.config import DetectorConfig
from maskwatch.detect.defaults import DEFAULT_MARGIN
from maskwatch.detect.detector import FaceDetector, Faces, create_detector
from maskwatch.runtime.classifiers import FaceClassifier


@dataclass
class FaceResult:
    box: list[float]  # [x1, y1, x2, y2], pixels of the original image
    det_score: float
    label: str
    score: float
    probs: dict[str, float]
    landmarks: list[list[float]] = field(default_factory=list)  # 5 x [x, y]
    track_id: int | None = None

    def to_json(self, landmarks: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "box": [round(v, 1) for v in self.box],
            "det_score": round(self.det_score, 4),
            "label": self.label,
            "score": round(self.score, 4),
            "probs": {k: round(v, 4) for k, v in self.probs.items()},
            "track_id": self.track_id,
        }
        if landmarks:
            out["landmarks"] = [[round(x, 1), round(y, 1)] for x, y in self.landmarks]
        return out


@dataclass
class FrameResult:
    source: str
    frame: int | None
    width: int
    height: int
    faces: list[FaceResult] = field(default_factory=list)

    def to_json(self, landmarks: bool = False) -> dict[str, Any]:
        return {
            "source": self.source,
            "frame": self.frame,
            "width": self.width,
            "height": self.height,
            "faces": [f.to_json(landmarks) for f in self.faces],
        }

    def counts(self, labels: list[str]) -> dict[str, int]:
        out = dict.fromkeys(labels, 0)
        for f in self.faces:
            out[f.label] = out.get(f.label, 0) + 1
        return out


class Pipeline:
    """Face detector + classifier. ``process`` handles one RGB image (H x W x 3 uint8)."""

    def __init__(self, detector: FaceDetector, classifier: FaceClassifier, *, margin: float = DEFAULT_MARGIN) -> None:
        self.detector = detector
        self.classifier = classifier
        self.margin = margin
        self.labels = list(classifier.labels)

    def detect(self, image: np.ndarray) -> Faces:
        return self.detector.detect(image)

    def classify(self, image: np.ndarray | Image.Image, boxes: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) of the faces at ``boxes``, in one batch."""
        if len(boxes) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
        crops = [crop_square(pil, box, self.margin) for box in boxes]
        return self.classifier.predict_images(crops)

    def process(self, image: np.ndarray, source: str = "", frame: int | None = None) -> FrameResult:
        faces = self.detect(image)
        probs = self.classify(image, faces.boxes)
        return self.result(image, faces, probs, source, frame)

    def result(
        self, image: np.ndarray, faces: Faces, probs: np.ndarray, source: str = "", frame: int | None = None
    ) -> FrameResult:
        height, width = image.shape[:2]
        out = FrameResult(source, frame, int(width), int(height))
        for i in range(len(faces)):
            k = int(np.argmax(probs[i]))
            out.faces.append(
                FaceResult(
                    box=[float(v) for v in faces.boxes[i]],
                    det_score=float(faces.scores[i]),
                    label=self.labels[k],
                    score=float(probs[i, k]),
                    probs={label: float(p) for label, p in zip(self.labels, probs[i], strict=True)},
                    landmarks=faces.landmarks[i].tolist(),
                )
            )
        return out


def load_pipeline(
    model: str | None = None,
    *,
    config: DetectorConfig | None = None,
    classifier: FaceClassifier | None = None,
) -> Pipeline:
    """The default pipeline (CenterFace + the shipped classifier), or with the named ONNX model (or a classifier
    already loaded: the command line loads checkpoints, ``cli.common.load_model_option``) and detector settings."""
    from maskwatch.runtime.classifiers import load_classifier

    cfg = config or DetectorConfig()
    det = create_detector(cfg.name, size=cfg.size, threshold=cfg.threshold, tiles=cfg.tiles, box_fit=cfg.box_fit)
    clf = classifier if classifier is not None else load_classifier(model)
    return Pipeline(det, clf, margin=cfg.margin)
