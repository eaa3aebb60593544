"""``DetectorConfig``: every setting of face detection and cropping, in one typed object that checks itself.

``detect``, ``evaluate-detect``, ``serve`` and the camera monitor build their detector from one of these (the CLI
from its options, ``ServeSettings.detector`` for the server), so each rule lives here once and its error names the
command-line option it comes from. The defaults and how they were chosen: ``detect/defaults.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from maskwatch.detect.defaults import (
    ACCURATE,
    BOX_FIT,
    DEFAULT_DET_SIZE,
    DEFAULT_DET_THRESHOLD,
    DEFAULT_INT8,
    DEFAULT_MARGIN,
    DEFAULT_NMS_IOU,
    SMALLEST_FACE,
    VIDEO_DET_MIN,
    VIDEO_DET_SCALE,
)
from maskwatch.errors import MaskwatchError

MAX_TILES = 8


def check_det_size(size: int, option: str = "--det-size") -> None:
    """The detector's input size rule (0: native size, else at least 32 px), its error naming ``option``."""
    if size != 0 and size < 32:
        raise MaskwatchError(f"{option} must be 0 (native) or at least 32 pixels (got {size})")


def parse_box_fit(text: str) -> tuple[float, float, float] | None:
    """``--box-fit``: "WIDTH,HEIGHT,SHIFT" (e.g. "1.1,1.05,0.12"), or "none" for the network's own boxes."""
    if text.strip().lower() in ("none", "off", "raw"):
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values[:2]) <= 0:
        raise MaskwatchError(
            f"--box-fit must be WIDTH,HEIGHT,SHIFT (scales > 0, e.g. 1.1,1.05,0.12) or none, not {text!r}"
        )
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class DetectorConfig:
    """How faces are found and cut out.

    size: long side (pixels) a photo is scaled to for the detector (``--det-size``; 0: native size; small photos are
    upscaled, which finds small faces). video_size: the same for video, webcams and streams (``--video-det-size``;
    None: half the frame's long side, see ``video_size_for``). threshold: face-centre score (``--det-threshold``).
    tiles: also detect on an N x N grid of overlapping tiles (``--tiles``; 0 or 1: off). margin: share of the box's
    side added on each edge of the classifier's square crop (``--margin``). box_fit: (width scale, height scale,
    downward shift as a share of the height) that moves the detector's boxes to brows-to-chin framing
    (``--box-fit``; None: the detector's own boxes). nms_iou: overlap above which two boxes are one face.
    smallest_face: photos are given to the detector no larger than a face of this many pixels needs (at most
    ``size``; 0: always at ``size``, as ``--accurate`` and an explicit ``--det-size`` do). int8: the shipped
    detector and the shipped classifier run quantized to int8 (``--accurate``: float32); another ``--model`` runs
    as it is.
    """

    size: int = DEFAULT_DET_SIZE
    threshold: float = DEFAULT_DET_THRESHOLD
    tiles: int = 0
    margin: float = DEFAULT_MARGIN
    box_fit: tuple[float, float, float] | None = BOX_FIT
    video_size: int | None = None
    nms_iou: float = DEFAULT_NMS_IOU
    name: str = "centerface"
    smallest_face: float = SMALLEST_FACE
    int8: bool = DEFAULT_INT8

    def __post_init__(self) -> None:
        check_det_size(self.size)
        if self.video_size is not None:
            check_det_size(self.video_size, "--video-det-size")
        if not 0 < self.threshold < 1:
            raise MaskwatchError(f"--det-threshold must be between 0 and 1 (got {self.threshold})")
        if not 0 <= self.tiles <= MAX_TILES:
            raise MaskwatchError(f"--tiles must be between 0 and {MAX_TILES} (got {self.tiles})")
        if not 0 <= self.margin <= 2:
            raise MaskwatchError(f"--margin must be between 0 and 2 (got {self.margin})")
        if self.box_fit is not None:
            fit = tuple(float(v) for v in self.box_fit)
            if len(fit) != 3 or min(fit[:2]) <= 0:
                raise MaskwatchError("--box-fit must be WIDTH,HEIGHT,SHIFT with scales > 0, or none")
            object.__setattr__(self, "box_fit", fit)  # a list from JSON or TOML becomes the tuple
        if not self.smallest_face >= 0:
            raise MaskwatchError(f"smallest_face must be 0 or more pixels (got {self.smallest_face})")
        if not 0 < self.nms_iou < 1:
            raise MaskwatchError(f"detector nms_iou must be between 0 and 1 (got {self.nms_iou})")

    @classmethod
    def from_options(
        cls,
        *,
        det_size: int | None = None,
        det_threshold: float = DEFAULT_DET_THRESHOLD,
        tiles: int = 0,
        margin: float = DEFAULT_MARGIN,
        box_fit: str | tuple[float, float, float] | None = BOX_FIT,
        video_det_size: int | None = None,
        accurate: bool = False,
    ) -> DetectorConfig:
        """From the command line's option values (``box_fit`` as ``--box-fit`` takes it, or already parsed).
        ``det_size`` None: the preset's sizing (fast: from the photo and ``SMALLEST_FACE``); a number: that long
        side for every photo. ``accurate``: the preset ``--accurate`` (``defaults.ACCURATE``)."""
        fit = parse_box_fit(box_fit) if isinstance(box_fit, str) else box_fit
        preset: dict[str, Any] = dict(ACCURATE) if accurate else {}
        if det_size is not None:
            preset["smallest_face"] = 0.0
        return cls(
            size=DEFAULT_DET_SIZE if det_size is None else det_size,
            threshold=det_threshold,
            tiles=tiles,
            margin=margin,
            box_fit=fit,
            video_size=video_det_size,
            **preset,
        )

    @classmethod
    def accurate(cls, **changes: Any) -> DetectorConfig:
        """The preset ``--accurate``: the settings before issue 23 (every photo at 800 px, float32 models)."""
        return cls(**{**ACCURATE, **changes})

    def video_size_for(self, width: int, height: int) -> int:
        """The detector input for a video of this frame size: ``video_size`` if set, else half the frame's long
        side, within [VIDEO_DET_MIN, DEFAULT_DET_SIZE] (320 for 640x480, 640 for 1280x720)."""
        if self.video_size is not None:
            return self.video_size
        return int(min(DEFAULT_DET_SIZE, max(VIDEO_DET_MIN, round(max(width, height) * VIDEO_DET_SCALE))))

    def describe(self) -> dict[str, Any]:
        out = asdict(self)
        out["box_fit"] = list(self.box_fit) if self.box_fit else None
        return out
