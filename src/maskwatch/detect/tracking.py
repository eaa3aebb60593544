"""Tracking faces across video frames (maskwatch's ByteTrack, detect/bytetrack.py), a label per track smoothed
over frames, and the per-source summary (unique people, % masked / incorrect / unmasked).

The steps chain on one ``Faces``: ``tracker.assign(faces)`` sets ``track_id``; the classifier fills ``probs`` of
the faces ``tracker.due`` names; ``tracker.smooth(faces, fresh)`` folds those into their tracks and replaces the
``probs`` of every tracked face by its track's. ``tracker.update(faces)`` does all three for faces already
classified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from maskwatch.detect.bytetrack import ByteTrack
from maskwatch.detect.faces import NO_TRACK, Faces
from maskwatch.detect.pipeline import FrameResult, Pipeline


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
        self.labels = list(labels)
        self.smoothing = smoothing
        self.min_frames = min_frames
        rate = fps if fps and fps > 0 else 25.0
        self._bytetrack = ByteTrack(
            lost_frames=max(1, round(lost_seconds * rate)),
            track_activation_threshold=0.5,
            minimum_consecutive_frames=2,
            high_conf_det_threshold=0.5,
        )
        self.tracks: dict[int, Track] = {}
        self.step = -1  # frames assigned so far - 1: the clock of needs_label

    def assign(self, faces: Faces) -> Faces:
        """Run the tracker on one frame's faces: the faces with ``track_id`` set (``NO_TRACK``: not a confirmed
        track yet). Each call is one frame."""
        self.step += 1
        return replace(faces, track_id=self._bytetrack.update(faces.boxes, faces.scores))

    def needs_label(self, tid: int, frame: int, every: int) -> bool:
        """Whether track ``tid`` should be classified again at ``frame`` (new, or last labelled ``every`` ago)."""
        track = self.tracks.get(tid)
        return track is None or frame - track.labelled_frame >= every

    def due(self, faces: Faces, every: int = 1) -> np.ndarray:
        """(N,) bool: the faces to classify this frame: not a confirmed track, or a track that is new or was last
        classified ``every`` frames ago."""
        return np.array(
            [tid == NO_TRACK or self.needs_label(int(tid), self.step, every) for tid in faces.track_id], bool
        ).reshape(-1)

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

    def smooth(self, faces: Faces, fresh: np.ndarray | None = None) -> Faces:
        """Fold the probabilities of the ``fresh`` faces (default: all) into their tracks, and give every tracked
        face its track's smoothed probabilities (faces without a track keep their own)."""
        if len(faces) and not faces.classified:
            raise ValueError("smooth needs classified faces (their probs)")
        fresh = np.ones(len(faces), bool) if fresh is None else np.asarray(fresh, bool)
        probs = faces.probs.copy()
        for i, tid in enumerate(faces.track_id.tolist()):
            if tid == NO_TRACK:
                continue
            if fresh[i]:
                self.observe(tid, probs[i], self.step)
            probs[i] = self.seen(tid)
        return replace(faces, probs=probs)

    def update(self, faces: Faces) -> Faces:
        """Track one frame of classified faces: ``track_id`` set, ``probs`` replaced by the tracks' smoothed ones."""
        return self.smooth(self.assign(faces))

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

    @property
    def labels(self) -> list[str]:
        return self.pipeline.labels

    @property
    def processed(self) -> int:
        """Frames processed so far: the clock of ``classify_every``."""
        return self.tracker.step + 1

    def track(self, image: np.ndarray) -> Faces:
        """Detect, track and classify one frame: its faces with ``track_id`` and smoothed ``probs``."""
        faces = self.tracker.assign(self.pipeline.detect(image))
        todo = self.tracker.due(faces, self.classify_every)
        self.classified += int(todo.sum())
        return self.tracker.smooth(self.pipeline.label(image, faces, todo), todo)

    def process(self, image: np.ndarray, source: str = "", frame: int = 0) -> FrameResult:
        """``track`` as a ``FrameResult``; ``frame`` (e.g. the decoded frame index) only labels the result."""
        return self.pipeline.result(image, self.track(image), source, frame)

    def summary(self) -> dict[str, Any]:
        return self.tracker.summary()
