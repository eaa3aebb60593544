"""Loosely framed face crops cut again to the training framing (detect.reframe), through classify and its CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.data.crops import crop_square
from maskwatch.detect.detector import CenterFace, Faces
from maskwatch.detect.reframe import FIND_FACE_MAX_SIDE, REFRAME_BELOW, REFRAME_MIN_FACE, Reframer, find_face
from maskwatch.evaluate.detection import box_iou
from maskwatch.runtime.classifiers import ASSETS, classify_images, classify_paths, load_classifier

PHOTO = ASSETS / "samples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def detector():
    return CenterFace()


@pytest.fixture(scope="module")
def photo():
    return Image.open(PHOTO).convert("RGB")


def test_a_loose_crop_is_cut_around_its_face(detector, photo):
    """The whole portrait (face about a third of it): cut at the training margin around the face found in it."""
    reframer = Reframer(detector)
    box, ratio = reframer.measure(photo)
    assert ratio == pytest.approx(max(box[2] - box[0], box[3] - box[1]) / 512) and ratio < REFRAME_BELOW
    full, _ = find_face(detector, photo)  # the same face as the detector finds at its photo size
    assert box_iou(np.array([box]), np.array([full]))[0, 0] > 0.8
    image, face_box = reframer(photo)
    assert face_box == [round(float(v), 1) for v in box]
    assert np.array_equal(np.asarray(image), np.asarray(crop_square(photo, box, 0.15)))


def test_tight_crops_and_faceless_images_are_kept(detector, photo):
    box, _ = find_face(detector, photo)
    tight = crop_square(photo, box, 0.15)
    assert Reframer(detector).measure(tight)[1] >= REFRAME_BELOW
    for image in (tight, Image.new("RGB", (160, 160), (40, 120, 60))):
        out, face_box = Reframer(detector)(image)
        assert out is image and face_box is None
    # a face found under REFRAME_MIN_FACE pixels is not cut out: too little is left of it
    small = photo.resize((48, 48), Image.BILINEAR)
    tiny_box, tiny_ratio = Reframer(detector, min_face=0).measure(small)
    assert tiny_box is not None and tiny_ratio < REFRAME_BELOW and min(tiny_box[2:] - tiny_box[:2]) < REFRAME_MIN_FACE
    assert Reframer(detector)(small)[1] is None
    assert Reframer(detector, min_face=0)(small)[1] is not None
    # the threshold decides: with 0.2 even the portrait is kept as it is
    assert Reframer(detector, below=0.2)(photo)[1] is None
    with pytest.raises(ValueError, match="threshold"):
        Reframer(detector, below=0)


def test_classify_images_reports_the_reframing(detector, photo):
    clf = load_classifier(None)
    plain = classify_images(clf, [photo], ["p"])[0]
    framed = classify_images(clf, [photo], ["p"], Reframer(detector))[0]
    assert "reframed" not in plain
    assert framed["reframed"] is True and len(framed["face_box"]) == 4
    want = clf.predict_images([Reframer(detector)(photo)[0]])[0]
    assert framed["probs"]["without_mask"] == pytest.approx(float(want[clf.labels.index("without_mask")]), abs=1e-6)
    assert framed["label"] == "without_mask"


def test_classify_cli_reframes_by_default(tmp_path):
    runner = CliRunner()
    out, out_plain = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    r = runner.invoke(app, ["classify", str(PHOTO), "--jsonl", str(out)])
    assert r.exit_code == 0, r.output
    line = json.loads(out.read_text())
    assert line["reframed"] is True and line["label"] == "without_mask"
    assert "1 loosely framed image(s) classified by the face found in them" in r.output
    r = runner.invoke(app, ["classify", str(PHOTO), "--jsonl", str(out_plain), "--no-reframe"])
    assert r.exit_code == 0, r.output
    assert "reframed" not in json.loads(out_plain.read_text())


class _ShapeDetector:
    """Records the shape of each image it is given; finds no face."""

    def __init__(self, size: int | None = None) -> None:
        if size is not None:
            self.size = size
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image):
        self.shapes.append(image.shape)
        return Faces(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


def test_find_face_scales_large_images_down_before_padding(detector, photo):
    """A 6000 x 6 strip is not padded to 10000 x 4006 at full resolution: the padded copy the detector gets is at most
    FIND_FACE_MAX_SIDE; smaller images go as they are; boxes come back in the image's pixels."""
    strip = Image.new("RGB", (6000, 6), (90, 90, 90))
    for det in (_ShapeDetector(256), _ShapeDetector()):
        assert find_face(det, strip) is None
        assert max(det.shapes[0][:2]) <= FIND_FACE_MAX_SIDE + 2, det.shapes
    usual = _ShapeDetector(256)
    find_face(usual, Image.new("RGB", (900, 1200), (90, 90, 90)))
    assert usual.shapes == [(1200 + 2 * 400, 900 + 2 * 400, 3)]  # padded by a third of the long side, not scaled
    small = Reframer(detector).detector  # at REFRAME_DET_SIZE, as classify runs it
    box, landmarks = find_face(small, photo)
    big_box, big_landmarks = find_face(small, photo.resize((4096, 4096), Image.BICUBIC))
    scale = 4096 / photo.width
    assert box_iou(np.array([big_box / scale]), np.array([box]))[0, 0] > 0.9
    np.testing.assert_allclose(big_landmarks / scale, landmarks, atol=4)


def test_classify_goes_on_past_an_image_it_cannot_classify(tmp_path, photo):
    """classify (reframe on) of a valid 100000 x 10 PNG: classified, no 31 GiB padding; and an image the reframer
    or classifier fails on is one error line while the others are classified."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (100_000, 10), (90, 90, 90)).save(folder / "a_wide.png")
    photo.save(folder / "b.png")
    out = tmp_path / "out.jsonl"
    r = CliRunner().invoke(app, ["classify", str(folder), "--jsonl", str(out)])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x.get("label") is not None for x in lines] == [True, True], lines
    assert lines[0]["reframed"] is False and lines[1]["reframed"] is True

    def fragile(image):
        if image.width > 1000:
            raise MemoryError("Unable to allocate 31.0 GiB")
        return image, None

    clf = load_classifier(None)
    paths = [folder / "b.png", folder / "a_wide.png", folder / "b.png"]
    results = list(classify_paths(clf, paths, reframe=fragile))
    assert [x["source"] for x in results] == [str(p) for p in paths]
    assert "label" in results[0] and "label" in results[2]
    assert results[1] == {
        "source": str(paths[1]),
        "error": "cannot classify (MemoryError: Unable to allocate 31.0 GiB)",
    }


def test_evaluate_reframe_scores_the_crops_classify_would_see(tmp_path, toy_data, detector, photo):
    """evaluate --reframe = evaluate on the crops already cut: same loss; the report counts the crops cut again."""
    from maskwatch.train import TrainConfig, train
    from maskwatch.train.evaluate import evaluate_model

    run = train(
        TrainConfig(data=[str(toy_data)], out=str(tmp_path / "run"), model="cnn", image_size=48, epochs=1, workers=0)
    ).run_dir
    box, _ = find_face(detector, photo)
    given, cut = tmp_path / "given", tmp_path / "cut"
    for root, portrait in ((given, photo), (cut, Reframer(detector)(photo)[0])):
        (root / "without_mask").mkdir(parents=True)
        (root / "with_mask").mkdir()
        portrait.save(root / "without_mask" / "portrait.png")
        crop_square(photo, box, 0.15).save(root / "without_mask" / "tight.png")
        crop_square(photo, box, 0.15).rotate(90).save(root / "with_mask" / "turned.png")
    evaluate_model(run, [str(given)], out=tmp_path / "e1", reframe=True)
    evaluate_model(run, [str(cut)], out=tmp_path / "e2")
    framed, plain = (json.loads((tmp_path / e / "metrics.json").read_text()) for e in ("e1", "e2"))
    assert framed["split"]["reframe"]["reframed"] == 1
    assert "reframe" not in plain["split"]
    assert framed["test"]["loss"] == pytest.approx(plain["test"]["loss"], abs=1e-6)
