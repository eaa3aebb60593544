"""Tracking faces across video frames (ByteTrack from the ``trackers`` package, by the supervision authors),
a label per track smoothed over frames, and the per-source summary (unique people, % masked / incorrect / unmasked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maskwatch.detect.pipeline import FrameResult


@dataclass
class Track:
    first_frame: int
    last_frame: int
    frames: int = 0
    prob_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    smoothed: np.ndarray = field(default_factory=lambda: np.zeros(0))


class FaceTracker:
    """Gives each face a ``track_id`` and replaces its label/probs by the track's exponentially smoothed ones.

    smoothing: weight of the newest frame in the running average (1 = no smoothing). A track counts as a person
    in the summary once it was seen in ``min_frames`` frames.
    """

    def __init__(
        self,
        labels: Sequence[str],
        fps: float | None = None,
        *,
        smoothing: float = 0.3,
        min_frames: int = 3,
        lost_seconds: float = 1.0,
    ) -> None:
        from trackers import ByteTrackTracker

        self.labels = list(labels)
        self.smoothing = smoothing
        self.min_frames = min_frames
        rate = fps if fps and fps > 0 else 25.0
        self._tracker = ByteTrackTracker(
            lost_track_buffer=max(1, round(lost_seconds * rate)),
            frame_rate=rate,
            track_activation_threshold=0.5,
            minimum_consecutive_frames=2,
            high_conf_det_threshold=0.5,
        )
        self.tracks: dict[int, Track] = {}

    def update(self, result: FrameResult) -> FrameResult:
        import supervision as sv

        frame = result.frame or 0
        if not result.faces:
            self._tracker.update(sv.Detections.empty())
            return result
        dets = sv.Detections(
            xyxy=np.array([f.box for f in result.faces], np.float32),
            confidence=np.array([f.det_score for f in result.faces], np.float32),
            data={"index": np.arange(len(result.faces))},
        )
        tracked = self._tracker.update(dets)
        for tid, idx in zip(tracked.tracker_id, tracked.data["index"], strict=True):
            if tid is None or int(tid) < 0:
                continue
            face = result.faces[int(idx)]
            probs = np.array([face.probs[label] for label in self.labels], np.float64)
            track = self.tracks.get(int(tid))
            if track is None:
                track = self.tracks[int(tid)] = Track(frame, frame, 0, np.zeros_like(probs), probs.copy())
            else:
                track.smoothed = self.smoothing * probs + (1 - self.smoothing) * track.smoothed
            track.frames += 1
            track.last_frame = frame
            track.prob_sum += probs
            k = int(track.smoothed.argmax())
            face.track_id = int(tid)
            face.label = self.labels[k]
            face.score = float(track.smoothed[k])
            face.probs = {label: float(p) for label, p in zip(self.labels, track.smoothed, strict=True)}
        return result

    def track_labels(self) -> dict[int, str]:
        """The label of each confirmed track: the argmax of its probabilities averaged over all its frames."""
        return {
            tid: self.labels[int(t.prob_sum.argmax())] for tid, t in self.tracks.items() if t.frames >= self.min_frames
        }

    def summary(self) -> dict[str, Any]:
        return summarise(list(self.track_labels().values()), self.labels, unit="people")


def summarise(labels_seen: Sequence[str], labels: Sequence[str], unit: str = "faces") -> dict[str, Any]:
    """Counts and percentages per label; ``unit`` says what was counted (faces in images, people in video)."""
    counts = {label: 0 for label in labels}
    for label in labels_seen:
        counts[label] = counts.get(label, 0) + 1
    total = sum(counts.values())
    return {
        unit: total,
        "counts": counts,
        "percent": {label: (round(100 * n / total, 1) if total else 0.0) for label, n in counts.items()},
    }
