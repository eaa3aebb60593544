"""maskwatch's ByteTrack (detect/bytetrack.py) on synthetic face sequences, its assignment, and FaceTracker's
lost-track buffer; the ids are compared with the ``trackers`` package's: recorded in bytetrack_reference.json
(so the comparison runs without the package), and live while it is installed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskwatch.detect.bytetrack import NO_ID, ByteTrack, assign, iou_matrix, match
from maskwatch.detect.faces import Faces
from maskwatch.detect.tracking import FaceTracker
from maskwatch.labels import CANONICAL_LABELS

LOST = 5  # lost_frames of every scenario
Row = tuple[str, list[float], float]  # (person, box, detector score)


def face(x: float, y: float, size: float = 60) -> list[float]:
    return [x, y, x + size, y + size * 1.2]


def moving(frames: int = 12, step: float = 4) -> list[list[Row]]:
    return [[("a", face(100 + step * i, 100), 0.9), ("b", face(400 - step * i, 150), 0.8)] for i in range(frames)]


def crossing(frames: int = 24) -> list[list[Row]]:
    """Two faces walking towards each other, overlapping half-way, and on."""
    return [[("a", face(100 + 12 * i, 100), 0.9), ("b", face(376 - 12 * i, 110), 0.9)] for i in range(frames)]


def away(gap: int) -> list[list[Row]]:
    """A face seen 8 frames, gone ``gap`` frames, back at the same place; another face stays all along."""
    return [
        ([("a", face(100, 100), 0.9)] if not 8 <= i < 8 + gap else []) + [("b", face(400, 100), 0.9)]
        for i in range(8 + gap + 6)
    ]


def dim(frames: int = 20) -> list[list[Row]]:
    """A face whose score drops under the high threshold for twice the lost buffer, then comes back."""
    return [[("a", face(100 + 2 * i, 100), 0.3 if 4 <= i < 4 + 2 * LOST else 0.9)] for i in range(frames)]


def flicker() -> list[list[Row]]:
    """A face, and a one-frame false positive at frame 3; and a low-score face that never starts a track."""
    rows = [[("a", face(100, 100), 0.9), ("low", face(400, 300), 0.3)] for _ in range(8)]
    rows[3].append(("fp", face(300, 50), 0.95))
    return rows


SCENARIOS = {
    "moving": moving(),
    "stride-5 gaps (5x the motion per processed frame)": moving(step=20),
    "crossing": crossing(),
    "back within the lost buffer": away(LOST),
    "back after the lost buffer": away(LOST + 1),
    "low scores keep the track": dim(),
    "one-frame false positive": flicker(),
}


def run(frames: list[list[Row]]) -> list[dict[str, int]]:
    tracker = ByteTrack(lost_frames=LOST)
    out = []
    for rows in frames:
        boxes = np.array([box for _, box, _ in rows], np.float32).reshape(-1, 4)
        ids = tracker.update(boxes, np.array([score for _, _, score in rows], np.float32))
        out.append({person: int(tid) for (person, _, _), tid in zip(rows, ids, strict=True)})
    return out


def ids_of(frames: list[dict[str, int]], person: str) -> list[int]:
    return [f[person] for f in frames if person in f]


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("moving", {"a": [NO_ID] + [0] * 11, "b": [NO_ID] + [1] * 11}),
        ("stride-5 gaps (5x the motion per processed frame)", {"a": [NO_ID] + [0] * 11, "b": [NO_ID] + [1] * 11}),
        ("crossing", {"a": [NO_ID] + [0] * 23, "b": [NO_ID] + [1] * 23}),
        ("back within the lost buffer", {"a": [NO_ID] + [0] * 13, "b": [NO_ID] + [1] * (LOST + 13)}),
        ("back after the lost buffer", {"a": [NO_ID] + [0] * 7 + [NO_ID] + [2] * 5, "b": [NO_ID] + [1] * 19}),
        ("low scores keep the track", {"a": [NO_ID] + [0] * 19}),
        ("one-frame false positive", {"a": [NO_ID] + [0] * 7, "low": [NO_ID] * 8, "fp": [NO_ID]}),
    ],
)
def test_bytetrack_ids(scenario, expected):
    frames = run(SCENARIOS[scenario])
    assert {person: ids_of(frames, person) for person in expected} == expected


def test_a_track_that_never_confirms_takes_no_id():
    """A face seen once, then another: the second gets id 0 (the first used up no id)."""
    tracker = ByteTrack(lost_frames=LOST)
    assert tracker.update(np.array([face(0, 0)]), np.array([0.9])).tolist() == [NO_ID]
    for _ in range(3):
        ids = tracker.update(np.array([face(300, 300)]), np.array([0.9]))
    assert ids.tolist() == [0] and tracker.next_id == 1


REFERENCE = json.loads((Path(__file__).with_name("bytetrack_reference.json")).read_text())


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_same_ids_as_the_trackers_package_recorded(scenario):
    """The ids ``trackers``' ByteTrackTracker gave on the same scenario (recorded with the package installed)."""
    assert run(SCENARIOS[scenario]) == REFERENCE["ids"][scenario]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_same_ids_as_the_trackers_package(scenario):
    trackers = pytest.importorskip("trackers")
    sv = pytest.importorskip("supervision")
    theirs = trackers.ByteTrackTracker(
        lost_track_buffer=LOST,
        frame_rate=30.0,  # lost_track_buffer counts 30 fps frames: LOST frames here
        track_activation_threshold=0.5,
        minimum_consecutive_frames=2,
        high_conf_det_threshold=0.5,
    )
    expected = []
    for rows in SCENARIOS[scenario]:
        ids = {}
        if rows:
            dets = sv.Detections(
                xyxy=np.array([box for _, box, _ in rows], np.float32),
                confidence=np.array([score for _, _, score in rows], np.float32),
                data={"index": np.arange(len(rows))},
            )
            out = theirs.update(dets)
            ids = {rows[int(i)][0]: int(t) for t, i in zip(out.tracker_id, out.data["index"], strict=True)}
        else:
            theirs.update(sv.Detections.empty())
        expected.append(ids)
    assert run(SCENARIOS[scenario]) == expected


def test_assignment_is_optimal():
    """Against brute force on small matrices, ties and rectangles included."""
    from itertools import permutations

    rng = np.random.default_rng(0)
    for trial in range(300):
        n, m = (int(v) for v in rng.integers(1, 6, 2))
        cost = rng.random((n, m)) if trial % 2 else rng.integers(0, 3, (n, m)).astype(float)
        pairs = assign(cost)
        assert len(pairs) == min(n, m)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        k = min(n, m)
        if n <= m:
            best = min(sum(cost[i, p[i]] for i in range(k)) for p in permutations(range(m), k))
        else:
            best = min(sum(cost[p[j], j] for j in range(k)) for p in permutations(range(n), k))
        assert sum(cost[r, c] for r, c in pairs) == pytest.approx(best)


def test_match_is_not_greedy_and_drops_weak_pairs():
    # greedy by IoU would pair track 0 with detection 0 (0.6) and leave track 1 only 0.0; optimal: 0.5 + 0.55
    similarity = np.array([[0.6, 0.5], [0.55, 0.0]])
    assert match(similarity, 0.1) == ([(0, 1), (1, 0)], [], [])
    assert match(np.array([[0.05, 0.0]]), 0.1) == ([], [0], [0, 1])
    assert match(np.zeros((0, 2)), 0.1) == ([], [], [0, 1])


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0], [0, 0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 2)


@pytest.mark.parametrize(("fps", "gap", "same"), [(10, 10, True), (10, 11, False), (None, 25, True), (None, 26, False)])
def test_face_tracker_keeps_a_lost_face_one_second(fps, gap, same):
    """lost_seconds (1 s) * fps processed frames (25 fps when unknown)."""
    tracker = FaceTracker(CANONICAL_LABELS, fps)
    probs = np.array([[0.9, 0.05, 0.05]], np.float32)
    one = Faces(np.array([face(100, 100)], np.float32), np.array([0.9], np.float32), probs=probs)
    for _ in range(3):
        before = tracker.update(one).track_id[0]
    for _ in range(gap):
        tracker.update(Faces(probs=np.zeros((0, 3), np.float32)))
    after = tracker.update(one).track_id[0]
    assert before == 0 and (after == before) == same
