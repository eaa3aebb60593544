"""People, not frames: each track of a camera's ``FaceTracker`` becomes one ``PersonEvent`` when it ends (unseen
for the tracker's lost buffer) or has been in view for ``max_seconds`` (then a new event starts for the rest).

The label is voted as ``FaceTracker.track_labels`` votes it: the label of highest mean probability over the
track's classifications (those of this event's span); ``vote_share`` is that mean probability. The snapshot is
the frame in which the face was largest, JPEG-encoded when the event is written: faces blurred (``blurred``, the
default; every face the detector found in that frame), as captured (``full``) or none.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from maskwatch.detect.faces import NO_TRACK, Faces
from maskwatch.detect.tracking import FaceTracker

BLUR_GROW = 0.25  # the blurred region: the face box grown by this share of its side on each edge
JPEG_QUALITY = 85


@dataclass
class PersonEvent:
    camera: str
    track_id: int
    first_seen: float  # Unix seconds: capture time of the first frame it was in
    last_seen: float
    label: str
    vote_share: float  # mean probability of ``label`` over the event's classifications
    frames: int  # analysed frames it was in
    face_px: int  # largest face: the longer side of its box, pixels
    probs: dict[str, float] = field(default_factory=dict)  # mean probability per label
    snapshot: bytes | None = None  # JPEG (blurred, full, or None), written by the store as a file
    decided: float = 0.0  # capture time of the frame at which the event was closed (latency = commit - decided)
    reason: str = "lost"  # lost | max_duration | stopped
    id: int | None = None  # the store's row id, set when committed
    snapshot_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "camera": self.camera,
            "track_id": self.track_id,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "label": self.label,
            "vote_share": round(self.vote_share, 4),
            "frames": self.frames,
            "face_px": self.face_px,
            "probs": {k: round(v, 4) for k, v in self.probs.items()},
            "reason": self.reason,
        }


@dataclass
class _Open:
    first_seen: float
    last_seen: float
    last_step: int
    base: np.ndarray  # the track's prob_sum when this event began (a long stay is split in events)
    frames: int = 0
    face_px: int = 0
    best: tuple[np.ndarray, np.ndarray, int] | None = None  # (frame, every box in it, index of this face)


def blur_faces(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with every box (grown by ``BLUR_GROW``) Gaussian-blurred beyond recognition."""
    canvas = Image.fromarray(image)
    width, height = canvas.size
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4).tolist():
        side = max(x2 - x1, y2 - y1, 1.0)
        grow = BLUR_GROW * side
        box = (
            max(0, int(x1 - grow)),
            max(0, int(y1 - grow)),
            min(width, int(x2 + grow) + 1),
            min(height, int(y2 + grow) + 1),
        )
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        region = canvas.crop(box)
        canvas.paste(region.filter(ImageFilter.GaussianBlur(radius=max(4.0, side / 6))), box)
    return np.asarray(canvas)


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class PersonTracker:
    """Follows the tracks of one camera's ``FaceTracker`` and returns the person events that close.

    ``update`` once per analysed frame, after ``TrackedPipeline.track``; ``close_all`` when the camera's
    connection ends (its tracker is replaced then). Tracks shorter than the tracker's ``min_frames`` are no
    person (as in ``detect``'s summary). Each closed track is dropped from the tracker (bounded memory)."""

    def __init__(
        self,
        camera: str,
        tracker: FaceTracker,
        *,
        lost_frames: int,
        max_seconds: float = 300.0,
        snapshots: str = "blurred",
    ) -> None:
        self.camera = camera
        self.tracker = tracker
        self.lost_frames = max(0, int(lost_frames))
        self.max_seconds = max_seconds
        self.snapshots = snapshots
        self.open: dict[int, _Open] = {}

    def update(self, image: np.ndarray, faces: Faces, ts: float) -> list[PersonEvent]:
        step = self.tracker.step
        boxes = faces.boxes
        for i, tid in enumerate(faces.track_id.tolist()):
            if tid == NO_TRACK or tid not in self.tracker.tracks:
                continue
            person = self.open.get(tid)
            if person is None:
                person = self.open[tid] = _Open(ts, ts, step, np.zeros_like(self.tracker.tracks[tid].prob_sum))
            person.last_seen, person.last_step = ts, step
            person.frames += 1
            x1, y1, x2, y2 = boxes[i].tolist()
            size = round(max(x2 - x1, y2 - y1))
            if size > person.face_px:
                person.face_px = size
                person.best = (image, boxes.copy(), i)
        out = []
        for tid, person in list(self.open.items()):
            if step - person.last_step > self.lost_frames:  # ByteTrack has dropped it: the track ended
                out += self._close(tid, ts, "lost", forget=True)
            elif person.last_seen - person.first_seen >= self.max_seconds:
                out += self._close(tid, ts, "max_duration", forget=False)
        return out

    def close_all(self, ts: float, reason: str = "stopped") -> list[PersonEvent]:
        out = []
        for tid in list(self.open):
            out += self._close(tid, ts, reason, forget=True)
        return out

    def _close(self, tid: int, ts: float, reason: str, *, forget: bool) -> list[PersonEvent]:
        person = self.open.pop(tid)
        track = self.tracker.tracks.get(tid)
        if forget:
            self.tracker.tracks.pop(tid, None)
        else:  # the stay goes on as a new event
            assert track is not None
            self.open[tid] = _Open(ts, ts, person.last_step, track.prob_sum.copy())
        if track is None or person.frames < self.tracker.min_frames:
            return []
        votes = track.prob_sum - person.base
        if votes.sum() <= 0:  # not classified during this span (classify_every): the whole track's votes
            votes = track.prob_sum
        total = float(votes.sum()) or 1.0
        mean = votes / total
        k = int(votes.argmax())
        event = PersonEvent(
            camera=self.camera,
            track_id=int(tid),
            first_seen=person.first_seen,
            last_seen=person.last_seen,
            label=self.tracker.labels[k],
            vote_share=float(mean[k]),
            frames=person.frames,
            face_px=person.face_px,
            probs={label: float(p) for label, p in zip(self.tracker.labels, mean.tolist(), strict=True)},
            decided=ts,
            reason=reason,
        )
        if person.best is not None and self.snapshots != "none":
            image, boxes, _ = person.best
            event.snapshot = encode_jpeg(blur_faces(image, boxes) if self.snapshots == "blurred" else image)
        return [event]
