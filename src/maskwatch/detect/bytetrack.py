"""ByteTrack (Zhang et al., 2022, "ByteTrack: Multi-Object Tracking by Associating Every Detection Box") in numpy.

It behaves as the ``trackers`` package's ``ByteTrackTracker`` (by the supervision authors, which maskwatch used
before) at a fixed frame rate:

- every track's Kalman filter predicts the frame; then the detections scoring at least ``high_conf_det_threshold``
  are matched against all tracks, and the lower ones against the tracks left unmatched (which keeps a track alive
  through a blurred or half-hidden face); a match needs an IoU of at least ``minimum_iou_threshold``;
- an unmatched high detection scoring at least ``track_activation_threshold`` starts a track; a track gets an id
  (0, 1, 2, ...) once matched in ``minimum_consecutive_frames`` frames in a row, so a one-frame false positive
  never gets one; a track not matched is kept ``lost_frames`` frames (a track without an id is dropped at once).

The Kalman filter is the paper's (from DeepSORT): constant velocity on (centre x, centre y, aspect w/h, height)
with noise proportional to the height. ``trackers`` filters the corners (x1, y1, x2, y2) instead; both follow a
face alike, the ids agree on the same detections (tests/test_tracking.py compares them).

Matching is an optimal assignment (the Hungarian method with potentials, O(n^2 m), n <= m) that maximises the
summed IoU, as scipy's ``linear_sum_assignment`` does for ``trackers``; pairs under the IoU threshold are then
dropped. A greedy match by descending IoU would be shorter but can pair a track with the wrong one of two faces
that cross; with the few faces of a frame the exact method costs microseconds.
"""

from __future__ import annotations

import numpy as np

NO_ID = -1
_STD_POSITION = 1 / 20  # the paper's noise weights, relative to the box height
_STD_VELOCITY = 1 / 160
_F = np.eye(8) + np.eye(8, k=4)  # constant velocity: position += velocity per frame


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), ``[x1, y1, x2, y2]``: (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    wh = np.maximum(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.prod(np.maximum(a[:, 2:] - a[:, :2], 0), axis=1)
    area_b = np.prod(np.maximum(b[:, 2:] - b[:, :2], 0), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)  # no area: no overlap, 0


def assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment of rows to columns of ``cost`` (N, M): min(N, M) (row, col) pairs, sorted by row.

    The Hungarian method with row and column potentials, one shortest augmenting path per row; when every row's
    cheapest column differs (faces that move less than their size between frames), those are the answer."""
    cost = np.asarray(cost, np.float64)
    if cost.size == 0:
        return []
    flipped = cost.shape[0] > cost.shape[1]
    c = cost.T if flipped else cost
    n, m = c.shape
    best = np.argmin(c, axis=1)
    if len(np.unique(best)) == n:  # each row's cheapest column is its own: no assignment can cost less
        pairs = [(i, int(j)) for i, j in enumerate(best)]
        return sorted((j, i) for i, j in pairs) if flipped else pairs
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    row_of = np.zeros(m + 1, np.int64)  # row (1-based) given column j; 0: none. Column 0 is the path's root.
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        row_of[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = row_of[j0]
            free = ~used[1:]
            reduced = c[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            j1 = int(np.argmin(np.where(free, minv[1:], np.inf))) + 1
            delta = minv[j1]
            u[row_of[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0:  # flip the augmenting path
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    pairs = [(int(row_of[j]) - 1, j - 1) for j in range(1, m + 1) if row_of[j]]
    if flipped:
        pairs = [(col, row) for row, col in pairs]
    return sorted(pairs)


def match(similarity: np.ndarray, threshold: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pairs (row, col) of the assignment maximising the summed similarity that reach ``threshold``; the rows and
    columns left unmatched (sorted)."""
    n, m = similarity.shape
    pairs = [(r, c) for r, c in assign(-similarity) if similarity[r, c] >= threshold] if n and m else []
    rows = {r for r, _ in pairs}
    cols = {c for _, c in pairs}
    return pairs, [r for r in range(n) if r not in rows], [c for c in range(m) if c not in cols]


class KalmanBox:
    """Constant-velocity Kalman filter on a box as (cx, cy, w/h, h) and their velocities (ByteTrack's)."""

    def __init__(self, box: np.ndarray) -> None:
        z = _xyah(box)
        self.mean = np.concatenate([z, np.zeros(4)])
        h = z[3]
        p, v = _STD_POSITION * h, _STD_VELOCITY * h
        self.cov = np.diag(np.square([2 * p, 2 * p, 1e-2, 2 * p, 10 * v, 10 * v, 1e-5, 10 * v]))

    def predict(self, still_height: bool = False) -> None:
        """One frame ahead; ``still_height``: the height's velocity is zeroed first (the paper does so for a track
        lost the frame before)."""
        if still_height:
            self.mean[7] = 0.0
        h = self.mean[3]
        p, v = _STD_POSITION * h, _STD_VELOCITY * h
        self.mean = _F @ self.mean
        self.cov = _F @ self.cov @ _F.T + np.diag(np.square([p, p, 1e-2, p, v, v, 1e-5, v]))

    def update(self, box: np.ndarray) -> None:
        h = self.mean[3]
        p = _STD_POSITION * h
        s = self.cov[:4, :4] + np.diag(np.square([p, p, 1e-1, p]))
        gain = np.linalg.solve(s, self.cov[:4, :]).T  # cov H^T S^-1 (both symmetric)
        self.mean = self.mean + gain @ (_xyah(box) - self.mean[:4])
        self.cov = self.cov - gain @ s @ gain.T

    def box(self) -> np.ndarray:
        cx, cy, a, h = self.mean[:4]
        w = a * h
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _xyah(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    h = max(y2 - y1, 1e-6)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / h, h])


class _Track:
    def __init__(self, box: np.ndarray) -> None:
        self.kf = KalmanBox(box)
        self.id = NO_ID
        self.hits = 1  # frames matched in a row, the detection that started it included
        self.missed = 0  # frames since it was last matched


class ByteTrack:
    """``update(boxes, scores)`` once per frame -> the track id of each detection (``NO_ID``: none yet).

    lost_frames: how many frames a track with an id survives unmatched. The other settings are ``trackers``'s
    names; the defaults are maskwatch's (``trackers`` defaults to 0.7 activation and 0.6 high-confidence)."""

    def __init__(
        self,
        lost_frames: int = 30,
        *,
        track_activation_threshold: float = 0.5,
        minimum_consecutive_frames: int = 2,
        minimum_iou_threshold: float = 0.1,
        high_conf_det_threshold: float = 0.5,
    ) -> None:
        if lost_frames < 0 or minimum_consecutive_frames < 1:
            raise ValueError("lost_frames must be >= 0 and minimum_consecutive_frames >= 1")
        self.lost_frames = lost_frames
        self.track_activation_threshold = track_activation_threshold
        self.minimum_consecutive_frames = minimum_consecutive_frames
        self.minimum_iou_threshold = minimum_iou_threshold
        self.high_conf_det_threshold = high_conf_det_threshold
        self.tracks: list[_Track] = []
        self.next_id = 0

    def update(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        ids = np.full(len(boxes), NO_ID, np.int64)
        for t in self.tracks:
            if t.missed > 0:
                t.hits = 0
            t.kf.predict(still_height=t.missed > 0)
            t.missed += 1
        predicted = np.array([t.kf.box() for t in self.tracks]).reshape(-1, 4)
        high = np.flatnonzero(scores >= self.high_conf_det_threshold)
        low = np.flatnonzero(scores < self.high_conf_det_threshold)

        pairs, left, new = match(iou_matrix(predicted, boxes[high]), self.minimum_iou_threshold)
        for row, col in pairs:
            ids[high[col]] = self._matched(self.tracks[row], boxes[high[col]])
        pairs, _, _ = match(iou_matrix(predicted[left], boxes[low]), self.minimum_iou_threshold)
        for row, col in pairs:
            ids[low[col]] = self._matched(self.tracks[left[row]], boxes[low[col]])

        for col in new:
            if scores[high[col]] >= self.track_activation_threshold:
                self.tracks.append(_Track(boxes[high[col]]))
        self.tracks = [
            t
            for t in self.tracks
            if t.missed <= self.lost_frames
            and (t.id != NO_ID or t.hits >= self.minimum_consecutive_frames or t.missed == 0)
        ]
        return ids

    def _matched(self, track: _Track, box: np.ndarray) -> int:
        track.kf.update(box)
        track.missed = 0
        track.hits += 1
        if track.id == NO_ID and track.hits >= self.minimum_consecutive_frames:
            track.id = self.next_id
            self.next_id += 1
        return track.id
