"""Tracking faces across video frames (ByteTrack from the ``trackers`` package, by the supervision authors),
a label per track smoothed over frames, and the per-source summary (unique people, % masked / incorrect / unmasked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maskwatch.detect.pipeline import FaceResult, FrameResult, Pipeline


@dataclass
class Track:
    smoothed: np.ndarray  # exponential moving average of its classifications
    prob_sum: np.ndarray  # their sum
    labelled_frame: int  # the frame it was last classified in
    frames: int = 0  # frames the track appeared in


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

    def assign(self, boxes: np.ndarray, scores: np.ndarray) -> list[int | None]:
        """Run the tracker on one frame's faces; the track id of each face (None: not a confirmed track yet)."""
        import supervision as sv

        if len(boxes) == 0:
            self._tracker.update(sv.Detections.empty())
            return []
        dets = sv.Detections(
            xyxy=np.asarray(boxes, np.float32).reshape(-1, 4),
            confidence=np.asarray(scores, np.float32),
            data={"index": np.arange(len(boxes))},
        )
        tracked = self._tracker.update(dets)
        ids: list[int | None] = [None] * len(boxes)
        for tid, idx in zip(tracked.tracker_id, tracked.data["index"], strict=True):
            if tid is not None and int(tid) >= 0:
                ids[int(idx)] = int(tid)
        return ids

    def needs_label(self, tid: int, frame: int, every: int) -> bool:
        """Whether track ``tid`` should be classified again at ``frame`` (new, or last labelled ``every`` ago)."""
        track = self.tracks.get(tid)
        return track is None or frame - track.labelled_frame >= every

    def observe(self, tid: int, probs: np.ndarray, frame: int) -> np.ndarray:
        """Fold a new classification of track ``tid`` into its smoothed probabilities; return them."""
        probs = np.asarray(probs, np.float64)
        track = self.tracks.get(tid)
        if track is None:
            track = self.tracks[tid] = Track(probs.copy(), np.zeros_like(probs), frame)
        else:
            track.smoothed = self.smoothing * probs + (1 - self.smoothing) * track.smoothed
        track.labelled_frame = frame
        track.prob_sum += probs
        return track.smoothed

    def seen(self, tid: int) -> np.ndarray:
        """Count a frame in which track ``tid`` appeared; return its smoothed probabilities."""
        track = self.tracks[tid]
        track.frames += 1
        return track.smoothed

    def update(self, result: FrameResult) -> FrameResult:
        """Track every face of an already classified frame and replace labels by the tracks' smoothed ones."""
        frame = result.frame or 0
        ids = self.assign(np.array([f.box for f in result.faces]), np.array([f.det_score for f in result.faces]))
        for face, tid in zip(result.faces, ids, strict=True):
            if tid is None:
                continue
            self.observe(tid, np.array([face.probs[label] for label in self.labels]), frame)
            _relabel(face, tid, self.seen(tid), self.labels)
        return result

    def track_labels(self) -> dict[int, str]:
        """The label of each confirmed track: the argmax of the mean of all its classifications."""
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


def _relabel(face: FaceResult, tid: int, probs: np.ndarray, labels: list[str]) -> None:
    k = int(np.argmax(probs))
    face.track_id = tid
    face.label = labels[k]
    face.score = float(probs[k])
    face.probs = {label: float(p) for label, p in zip(labels, probs, strict=True)}


class TrackedPipeline:
    """The pipeline for video and streams: detect every frame, track, and classify each tracked face only when
    it is new or was last classified ``classify_every`` processed frames ago (its smoothed label carries over
    between); faces not yet confirmed as a track are classified every frame. ``classify_every`` counts calls of
    ``process``, not the frame numbers passed to it (with ``detect --every K`` those are K apart)."""

    def __init__(self, pipeline: Pipeline, fps: float | None = None, *, classify_every: int = 3, **tracker_options):
        if classify_every < 1:
            raise ValueError("classify_every must be at least 1")
        self.pipeline = pipeline
        self.classify_every = classify_every
        self.tracker = FaceTracker(pipeline.labels, fps, **tracker_options)
        self.classified = 0  # face crops sent to the classifier (for benchmarks)
        self.processed = 0  # frames processed so far: the clock of classify_every

    @property
    def labels(self) -> list[str]:
        return self.pipeline.labels

    def process(self, image: np.ndarray, source: str = "", frame: int = 0) -> FrameResult:
        """Detect, track and classify one frame; ``frame`` (e.g. the decoded frame index) only labels the result."""
        step = self.processed
        self.processed += 1
        faces = self.pipeline.detect(image)
        ids = self.tracker.assign(faces.boxes, faces.scores)
        todo = [
            i for i, tid in enumerate(ids) if tid is None or self.tracker.needs_label(tid, step, self.classify_every)
        ]
        probs = np.zeros((len(faces), len(self.labels)), np.float32)
        if todo:
            probs[todo] = self.pipeline.classify(image, faces.boxes[todo])
            self.classified += len(todo)
        fresh = set(todo)
        for i, tid in enumerate(ids):
            if tid is None:
                continue
            if i in fresh:
                self.tracker.observe(tid, probs[i], step)
            probs[i] = self.tracker.seen(tid)
        result = self.pipeline.result(image, faces, probs, source, frame)
        for face, tid in zip(result.faces, ids, strict=True):
            face.track_id = tid
        return result

    def summary(self) -> dict[str, Any]:
        return self.tracker.summary()
