"""evaluate-detect on scenes whose annotations hold a class the model does not know."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.detect.defaults import BOX_FIT
from maskwatch.detect.detector import fit_boxes
from maskwatch.runtime.classifiers import ASSETS

# the astronaut's face in samples/astronaut.jpg as CenterFace frames it, then fitted as the pipeline does
FACE = fit_boxes(np.array([[177.4, 56.1, 270.9, 176.8]], np.float32), BOX_FIT)[0]


def _voc(root, names: list[str]) -> None:
    """One scene per name: the astronaut photo, her face annotated with that class."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    photo = Image.open(ASSETS / "samples" / "astronaut.jpg").convert("RGB")
    for i, name in enumerate(names):
        photo.save(root / "images" / f"s{i}.jpg")
        b = FACE
        (root / "annotations" / f"s{i}.xml").write_text(
            f"<annotation><filename>s{i}.jpg</filename><object><name>{name}</name><bndbox>"
            f"<xmin>{b[0]:.0f}</xmin><ymin>{b[1]:.0f}</ymin><xmax>{b[2]:.0f}</xmax><ymax>{b[3]:.0f}</ymax>"
            "</bndbox></object></annotation>"
        )


def test_unknown_ground_truth_labels_are_scored_as_misses(tmp_path):
    root = tmp_path / "voc"
    _voc(root, ["without_mask", "face_shield"])
    out = tmp_path / "rep"
    result = CliRunner().invoke(app, ["evaluate-detect", "--data", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "scored as misses: face_shield" in result.output
    m = json.loads((out / "metrics.json").read_text())
    # both faces are found; the face_shield one can only get a wrong label, and its class no detection
    assert m["faces"]["iou50"]["tp"] == 2 and m["matched_faces"] == 2
    assert m["label_accuracy"] == pytest.approx(0.5)
    assert m["ap50"]["face_shield"] == 0.0 and m["ap50"]["without_mask"] == pytest.approx(1.0)
    # the report reads back with the extra class, no probability (NaN) for it
    from maskwatch.evaluate.bootstrap import ap50
    from maskwatch.evaluate.scenes import read_scene_report

    read = read_scene_report(out, root)
    assert read.preds[0].probs.shape == (1, 4) and np.isnan(read.preds[0].probs[0, 3])
    assert ap50(read.gts, read.preds, list(m["ap50"]))["face_shield"] == 0.0


def test_split_from_a_list_takes_names_without_extension_and_warns_about_the_rest(tmp_path):
    """A hand-typed scene list: a name without its extension is that scene; a name that is no scene is said on the
    console and recorded in metrics.json, not silently dropped."""
    root = tmp_path / "voc"
    _voc(root, ["without_mask"] * 4)
    listed = tmp_path / "scenes.txt"
    listed.write_text("# my scenes\ns0\ns1.jpg\ns2\nnot_a_scene\n")
    out = tmp_path / "rep"
    result = CliRunner().invoke(
        app, ["evaluate-detect", "--data", str(root), "--split-from", str(listed), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (
        "match no scene of" in result.output
        and "(1 of 4, left out)" in result.output
        and "not_a_scene" in result.output
    )
    m = json.loads((out / "metrics.json").read_text())
    assert m["counts"]["images"] == 3  # s0, s1.jpg and s2; s3 is not listed
    assert m["selection"]["listed_not_found"] == ["not_a_scene"]
    assert m["selection"]["scenes_in_subset"] == 3
    sources = [json.loads(line)["source"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert sources == ["s0.jpg", "s1.jpg", "s2.jpg"]


def test_split_from_a_list_that_names_no_scene_says_which_names(tmp_path):
    root = tmp_path / "voc"
    _voc(root, ["without_mask"])
    listed = tmp_path / "scenes.txt"
    listed.write_text("typo0\ntypo1\n")
    result = CliRunner().invoke(
        app, ["evaluate-detect", "--data", str(root), "--split-from", str(listed), "--out", str(tmp_path / "rep")]
    )
    assert result.exit_code == 2, result.output
    assert "none of the 2 scene names" in result.output and "typo0" in result.output


def test_split_scenes_returns_listed_names_as_written(tmp_path):
    """tools/ap_ceiling.py and tools/fit_face_boxes.py take split_scenes' names as they are."""
    from maskwatch.evaluate.scenes import split_scenes

    listed = tmp_path / "scenes.txt"
    listed.write_text("# header\na.jpg\nb\n\n")
    assert split_scenes(listed, "test") == ({"a.jpg", "b"}, set())
