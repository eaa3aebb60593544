"""``Faces``: the faces of one image as columns, the one object every step of the pipeline takes and returns.

The detector fills ``boxes``, ``scores`` and ``landmarks``; the classifier step fills ``probs``; the tracker sets
``track_id`` and replaces ``probs`` by each track's smoothed probabilities; the annotator draws it. Indexing,
``take`` and ``concat`` keep every column. ``FrameResult`` (pipeline.py) is built from it only for JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NO_TRACK = -1  # track_id of a face that is no confirmed track (a photo, or a face seen for the first time)


@dataclass
class Faces:
    """N faces in image pixels: boxes (N, 4) ``[x1, y1, x2, y2]``, scores (N,) detector confidence, landmarks
    (N, 5, 2), all float32; probs (N, C) class probabilities (C = 0 until classified); track_id (N,) int64,
    ``NO_TRACK`` where there is none. Missing columns are filled for N faces; lengths are checked once, here."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    probs: np.ndarray | None = None
    track_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        self.boxes = np.asarray(self.boxes, np.float32).reshape(n, 4)
        self.scores = _column(self.scores, np.zeros(n), np.float32).reshape(-1)
        self.landmarks = _column(self.landmarks, np.zeros((n, 5, 2)), np.float32)
        self.probs = _column(self.probs, np.zeros((n, 0)), np.float32)
        self.track_id = _column(self.track_id, np.full(n, NO_TRACK), np.int64)
        if (
            len(self.scores) != n
            or self.landmarks.shape != (n, 5, 2)
            or self.probs.ndim != 2
            or len(self.probs) != n
            or self.track_id.shape != (n,)
        ):
            raise ValueError(
                f"Faces columns disagree: boxes {self.boxes.shape}, scores {self.scores.shape}, landmarks"
                f" {self.landmarks.shape}, probs {self.probs.shape}, track_id {self.track_id.shape}"
            )

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int | slice | np.ndarray | list[int]) -> Faces:
        """The faces at ``index`` (an int, a slice, indices or a boolean mask), every column kept."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Faces(
            self.boxes[index], self.scores[index], self.landmarks[index], self.probs[index], self.track_id[index]
        )

    def take(self, keep: np.ndarray | list[int]) -> Faces:
        return self[np.asarray(keep, dtype=np.int64).reshape(-1)]

    @property
    def classified(self) -> bool:
        """Whether ``probs`` holds class probabilities (the classifier step ran)."""
        return self.probs.shape[1] > 0

    def label_index(self) -> np.ndarray:
        """(N,) the class index of each face: the argmax of its probabilities."""
        return np.argmax(self.probs, axis=1) if len(self) else np.zeros(0, np.int64)

    def label_score(self) -> np.ndarray:
        """(N,) the probability of each face's class."""
        return self.probs.max(axis=1) if len(self) else np.zeros(0, np.float32)

    @staticmethod
    def concat(parts: list[Faces]) -> Faces:
        if not parts:
            return Faces()
        widths = {p.probs.shape[1] for p in parts if len(p)}
        if len(widths) > 1:
            raise ValueError(f"cannot concatenate Faces with {sorted(widths)} classes")
        width = widths.pop() if widths else 0
        return Faces(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.landmarks for p in parts]),
            np.concatenate([p.probs.reshape(len(p), width) for p in parts]),
            np.concatenate([p.track_id for p in parts]),
        )


def _column(value: np.ndarray | None, default: np.ndarray, dtype: type) -> np.ndarray:
    return np.asarray(default if value is None else value, dtype)
