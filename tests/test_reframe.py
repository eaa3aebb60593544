"""Loosely framed face crops cut again to the training framing (detect.reframe), through classify and its CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.data.crops import crop_square
from maskwatch.detect.detector import CenterFace
from maskwatch.detect.reframe import REFRAME_BELOW, REFRAME_MIN_FACE, Reframer, find_face
from maskwatch.evaluate.detection import box_iou
from maskwatch.runtime.classifiers import ASSETS, classify_images, load_classifier

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


def test_evaluate_reframe_scores_the_crops_classify_would_see(tmp_path, toy_data, detector, photo):
    """evaluate --reframe = evaluate on the crops already cut: same loss; the report counts the crops cut again."""
    from maskwatch.evaluate.evaluator import evaluate_model
    from maskwatch.train import TrainConfig, train

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
