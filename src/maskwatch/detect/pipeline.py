"""The one flow every entry point uses: image → ``Faces`` → square crops → classifier (one batch) → ``Faces`` with
``probs``; ``FrameResult`` is built from them for JSON.

``FrameResult.to_json()`` is the JSON Lines schema of ``maskwatch detect --jsonl`` and of the web API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from maskwatch.data.crops import crop_square
from maskwatch.detect.config import DetectorConfig
from maskwatch.detect.defaults import DEFAULT_MARGIN
from maskwatch.detect.detector import FaceDetector, centerface_path, create_detector
from maskwatch.detect.faces import NO_TRACK, Faces
from maskwatch.runtime.classifiers import FaceClassifier, quantized_default


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

    @classmethod
    def from_faces(
        cls, faces: Faces, labels: Sequence[str], source: str, frame: int | None, width: int, height: int
    ) -> FrameResult:
        """The rows of classified ``faces`` (an image of ``width`` x ``height``), for JSON."""
        out = cls(source, frame, int(width), int(height))
        for box, det_score, lms, probs, tid in zip(
            faces.boxes.tolist(),
            faces.scores.tolist(),
            faces.landmarks.tolist(),
            faces.probs.tolist(),
            faces.track_id.tolist(),
            strict=True,
        ):
            k = max(range(len(probs)), key=probs.__getitem__)  # the first of equal maxima, as numpy's argmax
            out.faces.append(
                FaceResult(
                    box=box,
                    det_score=det_score,
                    label=labels[k],
                    score=probs[k],
                    probs=dict(zip(labels, probs, strict=True)),
                    landmarks=lms,
                    track_id=None if tid == NO_TRACK else tid,
                )
            )
        return out

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

    def label(self, image: np.ndarray | Image.Image, faces: Faces, rows: np.ndarray | None = None) -> Faces:
        """The faces with ``probs``: those at ``rows`` (a boolean mask; default: all) classified in one batch, the
        others keep theirs (zeros when they have none)."""
        if rows is None:
            return replace(faces, probs=self.classify(image, faces.boxes))
        probs = faces.probs.copy() if faces.classified else np.zeros((len(faces), len(self.labels)), np.float32)
        todo = np.flatnonzero(rows)
        if len(todo):
            probs[todo] = self.classify(image, faces.boxes[todo])
        return replace(faces, probs=probs)

    def faces(self, image: np.ndarray) -> Faces:
        """Detect and classify the faces of one RGB image."""
        return self.label(image, self.detect(image))

    def process(self, image: np.ndarray, source: str = "", frame: int | None = None) -> FrameResult:
        return self.result(image, self.faces(image), source, frame)

    def result(self, image: np.ndarray, faces: Faces, source: str = "", frame: int | None = None) -> FrameResult:
        """The ``FrameResult`` of classified ``faces`` found in ``image``."""
        height, width = image.shape[:2]
        return FrameResult.from_faces(faces, self.labels, source, frame, width, height)


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
    options: dict[str, Any] = {}
    if cfg.name == "centerface":
        options = {"smallest_face": cfg.smallest_face, "model_path": centerface_path(cfg.int8)}
    det = create_detector(
        cfg.name, size=cfg.size, threshold=cfg.threshold, tiles=cfg.tiles, box_fit=cfg.box_fit, **options
    )
    clf = classifier if classifier is not None else load_classifier(model)
    return Pipeline(det, quantized_default(clf) if cfg.int8 else clf, margin=cfg.margin)
