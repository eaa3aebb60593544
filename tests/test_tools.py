"""Scripts in tools/ that the result pages quote: their arithmetic on hand-made cases."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from maskwatch.evaluate.detection import GroundTruth, Prediction, detection_metrics
from maskwatch.evaluate.scenes import SceneScores

LABELS = ["mask_worn_incorrectly", "with_mask", "without_mask"]


@pytest.fixture(scope="module")
def ap_ceiling():
    path = Path(__file__).resolve().parents[1] / "tools" / "ap_ceiling.py"
    spec = importlib.util.spec_from_file_location("ap_ceiling", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scene() -> SceneScores:
    # One scene: a 40-px and a 10-px incorrectly-worn face, a 40-px face without mask; the model ranks a false
    # alarm (the without_mask face) first for "incorrect", then the large incorrect face, then the small one.
    gt = GroundTruth(
        "a.jpg",
        np.array([[0, 0, 40, 40], [100, 100, 110, 110], [200, 0, 240, 40]], np.float32),
        ["mask_worn_incorrectly", "mask_worn_incorrectly", "without_mask"],
    )
    probs = np.array([[0.5, 0.4, 0.1], [0.3, 0.6, 0.1], [0.9, 0.0, 0.1]], np.float32)
    pred = Prediction(
        "a.jpg",
        gt.boxes.copy(),
        np.ones(3, np.float32),
        [LABELS[k] for k in probs.argmax(1)],
        probs.max(1),
        probs,
    )
    return SceneScores({}, [gt], [pred])


def test_ap_ceiling_perfect_only_on_faces_of_min_size(ap_ceiling):
    scene = _scene()
    inc = "mask_worn_incorrectly"
    actual = detection_metrics(scene.gts, scene.preds, LABELS)["ap50"][inc]
    # Ranking: false alarm (0.9), large face (0.5), small face (0.3): precision 0, 1/2, 2/3 at recall 0, 1/2, 1;
    # interpolated (the best precision at this recall or beyond) it is 2/3 at every recall point -> AP 2/3.
    assert actual == pytest.approx(2 / 3, abs=1e-3)

    big_only = ap_ceiling._perfect(scene, LABELS, 20.0)
    probs = big_only[0].probs
    np.testing.assert_array_equal(probs[0], [1, 0, 0])  # 40 px: its true class
    np.testing.assert_array_equal(probs[2], [0, 0, 1])  # 40 px, without mask: the false alarm is gone
    np.testing.assert_allclose(probs[1], [0.3, 0.6, 0.1])  # 10 px: left as the model had it
    assert big_only[0].labels == [inc, "with_mask", "without_mask"]
    # Large face first (1.0), small one (0.3), the former false alarm now 0: AP 1.
    assert detection_metrics(scene.gts, big_only, LABELS)["ap50"][inc] == pytest.approx(1.0)

    every = ap_ceiling._perfect(scene, LABELS, 0.0)
    np.testing.assert_array_equal(every[0].probs, np.eye(3, dtype=np.float32)[[0, 0, 2]])
    # The model's own input is not changed.
    np.testing.assert_allclose(scene.preds[0].probs[0], [0.5, 0.4, 0.1])
