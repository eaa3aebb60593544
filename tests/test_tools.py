"""Scripts in tools/ that the result pages quote: their arithmetic on hand-made cases."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
    # One scene: a 40-px and a 10-px incorrectly-worn face and a 40-px face without mask, plus a 30-px detection of
    # no annotated face. For "incorrect" the model ranks that detection first (0.95), then the face without mask
    # (0.9), the large incorrect face (0.5) and the small one (0.3).
    gt = GroundTruth(
        "a.jpg",
        np.array([[0, 0, 40, 40], [100, 100, 110, 110], [200, 0, 240, 40]], np.float32),
        ["mask_worn_incorrectly", "mask_worn_incorrectly", "without_mask"],
    )
    probs = np.array([[0.5, 0.4, 0.1], [0.3, 0.6, 0.1], [0.9, 0.0, 0.1], [0.95, 0.05, 0.0]], np.float32)
    pred = Prediction(
        "a.jpg",
        np.concatenate([gt.boxes, [[300, 300, 330, 330]]]).astype(np.float32),
        np.ones(4, np.float32),
        [LABELS[k] for k in probs.argmax(1)],
        probs.max(1),
        probs,
    )
    return SceneScores({}, [gt], [pred])


def _ap(preds) -> float:
    return detection_metrics(_scene().gts, preds, LABELS)["ap50"]["mask_worn_incorrectly"]


def test_ap_ceiling_perfect_only_on_faces_of_min_size(ap_ceiling):
    scene = _scene()
    inc = "mask_worn_incorrectly"
    # As ranked: precision 0, 0, 1/3, 1/2 at recall 0, 0, 1/2, 1; interpolated (the best precision at this recall or
    # beyond) it is 1/2 at every recall point -> AP 1/2.
    assert _ap(scene.preds) == pytest.approx(0.5, abs=1e-3)

    big_only = ap_ceiling._perfect(scene, LABELS, 20.0)
    probs = big_only[0].probs
    np.testing.assert_array_equal(probs[0], [1, 0, 0])  # 40 px: its true class
    np.testing.assert_array_equal(probs[2], [0, 0, 1])  # 40 px, without mask: that false alarm is gone
    np.testing.assert_allclose(probs[1], [0.3, 0.6, 0.1])  # 10 px: left as the model had it
    np.testing.assert_allclose(probs[3], [0.95, 0.05, 0.0])  # no annotated face: left
    assert big_only[0].labels[:3] == [inc, "with_mask", "without_mask"]
    # Large face (1.0), the unmatched detection (0.95), the small face (0.3): precision 1 up to recall 1/2, then
    # 2/3: COCO's 101 recall points give (51 * 1 + 50 * 2/3) / 101.
    assert _ap(big_only) == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-3)

    cleared = ap_ceiling._perfect(scene, LABELS, 20.0, unmatched=True)
    np.testing.assert_array_equal(cleared[0].probs[3], [0, 0, 0])
    assert _ap(cleared) == pytest.approx(1.0)
    # A 30-px unmatched detection is below 32 px: kept.
    np.testing.assert_allclose(ap_ceiling._perfect(scene, LABELS, 32.0, unmatched=True)[0].probs[3], [0.95, 0.05, 0])

    every = ap_ceiling._perfect(scene, LABELS, 0.0)
    np.testing.assert_array_equal(every[0].probs[:3], np.eye(3, dtype=np.float32)[[0, 0, 2]])
    # The model's own input is not changed.
    np.testing.assert_allclose(scene.preds[0].probs[0], [0.5, 0.4, 0.1])


def test_scale_voc_scales_images_and_boxes(tmp_path):
    from conftest import make_voc
    from maskwatch.data.voc import read_voc

    path = Path(__file__).resolve().parents[1] / "tools" / "scale_voc.py"
    spec = importlib.util.spec_from_file_location("scale_voc", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    src = make_voc(tmp_path / "voc", n_images=3)
    assert tool.scale_voc(src, tmp_path / "half", 0.5, {"scene0.png", "scene2.png"}) == 2
    before = {item.image_path.name: item for item in read_voc(src)[0]}
    after = read_voc(tmp_path / "half")[0]
    assert [item.image_path.name for item in after] == ["scene0.png", "scene2.png"]
    for item in after:
        old = before[item.image_path.name]
        with Image.open(item.image_path) as img:
            assert img.size == (100, 60)  # 200 x 120 halved
        np.testing.assert_allclose([o.box for o in item.objects], [[v / 2 for v in o.box] for o in old.objects])
        assert [o.label for o in item.objects] == [o.label for o in old.objects]
    with pytest.raises(SystemExit, match="not empty"):
        tool.scale_voc(src, tmp_path / "half", 0.5)
