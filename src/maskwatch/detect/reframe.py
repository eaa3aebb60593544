"""Face crops framed loosely (head and shoulders, a whole person) cut again to the framing the classifier learned.

Training crops are square: the brows-to-chin face box plus ``DEFAULT_MARGIN`` of its side on each edge. A crop
from elsewhere may show much more around the face, and the classifier is less sure of such crops (held-out scene
faces cut with margin 0.15 / 0.4 / 0.7: accuracy 0.949 / 0.933 / 0.893). ``Reframer`` finds the face nearest the
crop's centre and, when that face spans less than ``REFRAME_BELOW`` of the crop's long side, returns the face cut
at the training margin; tighter crops are kept as they are (there the detector's box can run past the crop's
edges, and cutting it again costs more than it gives), and so are crops whose face found is under
``REFRAME_MIN_FACE`` pixels (in small crops that is often not the face the crop was cut for). ``maskwatch
classify``, ``POST /api/v1/classify`` and ``maskwatch evaluate --reframe`` use it; both thresholds were chosen on
validation crops (``tools/reframe_threshold.py``, docs/results/synthetic-masks.md).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from maskwatch.data.crops import crop_square
from maskwatch.data.images import resize_rgb
from maskwatch.detect.defaults import DEFAULT_MARGIN

REFRAME_DET_SIZE = 256  # detector input (long side, pixels) for a crop padded by a third on each side
REFRAME_BELOW = 0.6  # face side / crop long side under which a crop is cut again (a training crop: 0.77)
REFRAME_MIN_FACE = 12  # faces found with a shorter side (pixels) are not cut out: the crop is kept as it is
FIND_FACE_MAX_SIDE = 4096  # find_face scales larger padded images down first (smaller ones, every usual crop and
# photo up to about 2,400 px, go to the detector exactly as they are)


def find_face(detector, image: Image.Image, min_face: float = 0.0) -> tuple[np.ndarray, np.ndarray] | None:
    """The face nearest the centre of a face image: (box, landmarks) in its pixels, or None (none found, or its
    shorter side is under ``min_face`` pixels).

    The image is padded by a third on each side first: face crops are tight, and the detector needs context. An image
    whose padded copy would be over FIND_FACE_MAX_SIDE is scaled down first (the detector sees far fewer pixels
    anyway), so memory stays small: a 100000 x 10 strip or an 8000 x 8000 photo is not padded at full resolution."""
    arr = np.asarray(image.convert("RGB"))
    h, w = arr.shape[:2]
    scale = min(1.0, FIND_FACE_MAX_SIDE / (max(h, w) + 2 * (max(h, w) // 3)))
    if scale < 1:
        small_w, small_h = max(1, round(w * scale)), max(1, round(h * scale))
        arr = resize_rgb(arr, (small_w, small_h))
    sh, sw = arr.shape[:2]
    factor = np.array([w / sw, h / sh], np.float32)  # detector pixels -> the image's
    pad = max(sh, sw) // 3
    padded = np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), constant_values=128)
    faces = detector.detect(padded)
    if not len(faces):
        return None
    centres = ((faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2 - pad) * factor
    best = int(np.argmin(np.hypot(centres[:, 0] - w / 2, centres[:, 1] - h / 2)))
    box = (faces.boxes[best] - pad) * np.tile(factor, 2)
    if min(box[2] - box[0], box[3] - box[1]) < min_face:
        return None
    return box, (faces.landmarks[best] - pad) * factor


class Reframer:
    """``reframer(image)`` -> (the image to classify, the face box it was cut around, or None if kept as it was).

    ``detector`` (default: ``CenterFace()``) should frame faces as the training annotations do (CenterFace with its
    default box fit); it runs at ``det_size`` (a crop's face is large: a small input finds it, many times faster
    than a photo's)."""

    def __init__(
        self,
        detector=None,
        below: float = REFRAME_BELOW,
        margin: float = DEFAULT_MARGIN,
        det_size: int = REFRAME_DET_SIZE,
        min_face: float = REFRAME_MIN_FACE,
    ) -> None:
        if not 0 < below <= 1:
            raise ValueError("reframe threshold must be in (0, 1]")
        if detector is None:
            from maskwatch.detect.detector import CenterFace

            detector = CenterFace()
        self.detector = detector.resized(det_size) if hasattr(detector, "resized") else detector
        self.below, self.margin, self.min_face, self.det_size = below, margin, min_face, det_size

    def describe(self) -> dict[str, float]:
        return {"below": self.below, "margin": self.margin, "min_face": self.min_face, "det_size": self.det_size}

    def measure(self, image: Image.Image, min_face: float | None = None) -> tuple[np.ndarray | None, float]:
        """(the central face's box or None, its long side / the image's long side; inf when no face of at least
        ``min_face`` pixels (default: the reframer's) is found)."""
        found = find_face(self.detector, image, self.min_face if min_face is None else min_face)
        if found is None:
            return None, float("inf")
        box = found[0]
        return box, float(max(box[2] - box[0], box[3] - box[1]) / max(image.size))

    def __call__(self, image: Image.Image) -> tuple[Image.Image, list[float] | None]:
        box, ratio = self.measure(image)
        if box is None or ratio >= self.below:
            return image, None
        return crop_square(image, box, self.margin), [round(float(v), 1) for v in box]
