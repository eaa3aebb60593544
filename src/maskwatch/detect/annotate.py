"""Drawing faces on images with Pillow: a box per face in its label's colour, and above its top-left corner a
filled caption box in that colour with the label, score and track id in white ("mask 0.97", "#3 no mask 0.81").

The look is that of supervision's ``BoxAnnotator`` and ``LabelAnnotator`` (which maskwatch used before): box
thickness 2, captions about 11 px high with a padding of 4, every box drawn before any caption. The font is
Pillow's own (Aileron, shipped inside Pillow), so the drawing needs no font on the system.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from maskwatch.detect.faces import NO_TRACK, Faces
from maskwatch.labels import label_color

SHORT = {"with_mask": "mask", "without_mask": "no mask", "mask_worn_incorrectly": "incorrect"}
THICKNESS = 2
TEXT_SIZE = 13  # pixels: about OpenCV's text scale 0.5
TEXT_PADDING = 4
WHITE = (255, 255, 255)
UNLABELLED = (127, 127, 127)  # faces not classified: grey, captioned with the detector's score


class Annotator:
    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.colors = [label_color(label) for label in self.labels]  # RGB, as the images are
        self.font = ImageFont.load_default(size=TEXT_SIZE)

    def captions(self, faces: Faces) -> list[str]:
        if not faces.classified:
            return [f"face {s:.2f}" for s in faces.scores.tolist()]
        out = []
        ks, scores, tids = faces.label_index().tolist(), faces.label_score().tolist(), faces.track_id.tolist()
        for k, score, tid in zip(ks, scores, tids, strict=True):
            label = self.labels[k]
            text = f"{SHORT.get(label, label)} {score:.2f}"
            out.append(f"#{tid} {text}" if tid != NO_TRACK else text)
        return out

    def draw(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        """A copy of ``image`` (RGB) with ``faces`` drawn on it. (A ``FrameResult`` is taken too, for callers that
        still hold one.)"""
        if not isinstance(faces, Faces):
            faces = _faces_of(faces, self.labels)
        if not len(faces):
            return image.copy()
        canvas = Image.fromarray(image)
        pen = ImageDraw.Draw(canvas)
        colors = (
            [self.colors[k] for k in faces.label_index().tolist()] if faces.classified else [UNLABELLED] * len(faces)
        )
        corners = faces.boxes.astype(int).tolist()
        for (x1, y1, x2, y2), color in zip(corners, colors, strict=True):
            # the outline straddles the box's edge, as OpenCV's rectangle of thickness 2 does
            pen.rectangle((x1 - 1, y1 - 1, max(x1, x2) + 1, max(y1, y2) + 1), outline=color, width=THICKNESS)
        for (x1, y1, _, _), color, text in zip(corners, colors, self.captions(faces), strict=True):
            left, top_edge, right, bottom = pen.textbbox((0, 0), text, font=self.font)
            text_w, text_h = right - left, bottom - top_edge
            top = y1 - text_h - 2 * TEXT_PADDING
            pen.rectangle((x1, top, x1 + text_w + 2 * TEXT_PADDING, y1), fill=color)
            pen.text((x1 + TEXT_PADDING - left, top + TEXT_PADDING - top_edge), text, fill=WHITE, font=self.font)
        return np.asarray(canvas)


def _faces_of(result, labels: Sequence[str]) -> Faces:
    """The ``Faces`` of a ``FrameResult`` (serve/app.py draws its results)."""
    rows = result.faces
    return Faces(
        np.array([f.box for f in rows], np.float32).reshape(-1, 4),
        np.array([f.det_score for f in rows], np.float32),
        probs=np.array([[f.probs.get(label, 0.0) for label in labels] for f in rows], np.float32).reshape(
            len(rows), len(labels)
        ),
        track_id=np.array([NO_TRACK if f.track_id is None else f.track_id for f in rows], np.int64),
    )
