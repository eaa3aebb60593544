"""Drawing results on images: a box per face in its label's colour and a caption (label, score, track id),
with supervision's box and label annotators."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from maskwatch.detect.pipeline import FrameResult
from maskwatch.labels import label_color

SHORT = {"with_mask": "mask", "without_mask": "no mask", "mask_worn_incorrectly": "incorrect"}


class Annotator:
    def __init__(self, labels: Sequence[str]) -> None:
        import supervision as sv

        self.labels = list(labels)
        # supervision draws with OpenCV on BGR images and writes Color.as_bgr(); our images are RGB, so each
        # colour is given with its channels reversed to land as the right RGB value.
        palette = sv.ColorPalette([sv.Color(*reversed(label_color(label))) for label in self.labels])
        self._sv = sv
        self._box = sv.BoxAnnotator(color=palette, color_lookup=sv.ColorLookup.CLASS, thickness=2)
        self._text = sv.LabelAnnotator(
            color=palette,
            color_lookup=sv.ColorLookup.CLASS,
            text_color=sv.Color.WHITE,
            text_scale=0.5,
            text_padding=4,
            text_position=sv.Position.TOP_LEFT,
        )

    def captions(self, result: FrameResult) -> list[str]:
        out = []
        for f in result.faces:
            text = f"{SHORT.get(f.label, f.label)} {f.score:.2f}"
            out.append(f"#{f.track_id} {text}" if f.track_id is not None else text)
        return out

    def draw(self, image: np.ndarray, result: FrameResult) -> np.ndarray:
        """A copy of ``image`` (RGB) with the faces of ``result`` drawn on it."""
        canvas = image.copy()
        if not result.faces:
            return canvas
        sv = self._sv
        index = {label: i for i, label in enumerate(self.labels)}
        dets = sv.Detections(
            xyxy=np.array([f.box for f in result.faces], np.float32),
            confidence=np.array([f.score for f in result.faces], np.float32),
            class_id=np.array([index.get(f.label, 0) for f in result.faces], np.int64),
        )
        canvas = self._box.annotate(canvas, dets)
        return self._text.annotate(canvas, dets, labels=self.captions(result))
