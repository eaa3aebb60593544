"""The detection pipeline: CenterFace decode and detection, the pipeline on the bundled samples, tracking,
JSON Lines, video round trip, bad inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.detect.defaults import BOX_FIT
from maskwatch.detect.detector import CenterFace, Faces, decode_centerface, fit_boxes, nms
from maskwatch.detect.faces import NO_TRACK
from maskwatch.detect.pipeline import FrameResult, load_pipeline
from maskwatch.detect.tracking import FaceTracker, summarise
from maskwatch.detect.video import VideoWriter, read_video_info
from maskwatch.evaluate.detection import box_iou
from maskwatch.labels import CANONICAL_LABELS
from maskwatch.runtime.classifiers import ASSETS, DEFAULT_MODEL_FILE

SAMPLES = ASSETS / "samples"
# The astronaut's face in samples/astronaut.jpg (512 x 512), as the CenterFace network frames it (box_fit=None).
ASTRONAUT_FACE = np.array([177.4, 56.1, 270.9, 176.8], np.float32)
ASTRONAUT_BOX = fit_boxes(ASTRONAUT_FACE[None], BOX_FIT)[0]  # the same face framed brows to chin (the default)
runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline()


def test_decode_known_maps():
    """One face centre at heatmap cell (row 10, col 20), stride 4: box and landmarks by hand."""
    h, w = 32, 48
    heat = np.zeros((1, h, w), np.float32)
    heat[0, 10, 20] = 0.9
    heat[0, 3, 3] = 0.2  # under the threshold
    scale = np.zeros((2, h, w), np.float32)
    scale[0, 10, 20] = math.log(60 / 4)  # height 60 px
    scale[1, 10, 20] = math.log(40 / 4)  # width 40 px
    offset = np.zeros((2, h, w), np.float32)
    offset[:, 10, 20] = [0.25, 0.5]  # (y, x) in cells
    lms = np.zeros((10, h, w), np.float32)
    lms[:, 10, 20] = [0.5, 0.25, 0.5, 0.75, 0.7, 0.5, 0.9, 0.3, 0.9, 0.7]  # (y, x) per point, box units
    faces = decode_centerface(heat, scale, offset, lms, threshold=0.5)
    assert len(faces) == 1
    cx, cy = (20 + 0.5 + 0.5) * 4, (10 + 0.25 + 0.5) * 4  # 84, 43
    np.testing.assert_allclose(faces.boxes[0], [cx - 20, cy - 30, cx + 20, cy + 30], atol=1e-4)
    assert faces.scores[0] == pytest.approx(0.9)
    x1, y1 = cx - 20, cy - 30
    np.testing.assert_allclose(faces.landmarks[0, 0], [x1 + 0.25 * 40, y1 + 0.5 * 60], atol=1e-4)
    np.testing.assert_allclose(faces.landmarks[0, 2], [x1 + 0.5 * 40, y1 + 0.7 * 60], atol=1e-4)
    assert len(decode_centerface(heat, scale, offset, lms, threshold=0.95)) == 0


def test_nms_keeps_the_best_of_overlapping_boxes():
    faces = Faces(
        np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32),
        np.array([0.6, 0.9, 0.5], np.float32),
        np.zeros((3, 5, 2), np.float32),
    )
    kept = nms(faces, 0.3)
    np.testing.assert_allclose(kept.scores, [0.9, 0.5])


def test_centerface_finds_a_pasted_face_where_it_was_put(astronaut):
    """The astronaut photo scaled by 0.5 and pasted at (300, 150) into a larger generated scene."""
    found = CenterFace(box_fit=None).detect(astronaut)
    assert len(found) == 1
    assert box_iou(found.boxes, ASTRONAUT_FACE[None])[0, 0] > 0.95
    scene = np.full((600, 900, 3), 120, np.uint8)
    small = np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.BILINEAR))
    scene[150:406, 300:556] = small
    expected = ASTRONAUT_FACE * 0.5 + np.array([300, 150, 300, 150], np.float32)
    for det in (CenterFace(box_fit=None), CenterFace(size=0, box_fit=None), CenterFace(tiles=2, box_fit=None)):
        faces = det.detect(scene)
        assert len(faces) == 1, det.describe()
        assert box_iou(faces.boxes, expected[None])[0, 0] > 0.8, (faces.boxes, expected)
        (le, re, nose, lm, rm) = faces.landmarks[0]
        x1, y1, x2, y2 = faces.boxes[0]
        assert x1 <= nose[0] <= x2 and y1 <= nose[1] <= y2
        assert le[0] < re[0] and lm[0] < rm[0]  # left to right as seen
        assert max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])  # eyes above the nose above the mouth
    assert len(CenterFace().detect(np.full((300, 300, 3), 128, np.uint8))) == 0  # a blank image has no face


def test_fit_boxes_by_hand():
    """A 40 x 80 box at (10, 20): 1.1 times as wide about its centre, as high, moved down 0.12 of its height."""
    out = fit_boxes(np.array([[10, 20, 50, 100], [0, 0, 10, 10]], np.float32), (1.1, 1.0, 0.12))
    np.testing.assert_allclose(out[0], [8, 29.6, 52, 109.6], atol=1e-4)
    np.testing.assert_allclose(out[1], [-0.5, 1.2, 10.5, 11.2], atol=1e-4)
    np.testing.assert_allclose(fit_boxes(out, (1.0, 1.0, 0.0)), out)


def test_default_boxes_are_the_network_boxes_fitted(astronaut):
    """The default detector frames faces brows to chin: its boxes are the network's, through BOX_FIT (lower, and
    no narrower); landmarks are the network's."""
    raw = CenterFace(box_fit=None).detect(astronaut)
    fitted = CenterFace().detect(astronaut)
    assert BOX_FIT != (1.0, 1.0, 0.0) and len(raw) == len(fitted) == 1
    np.testing.assert_allclose(fitted.boxes, np.clip(fit_boxes(raw.boxes, BOX_FIT), 0, 512), atol=1e-3)
    np.testing.assert_allclose(fitted.landmarks, raw.landmarks)
    assert fitted.boxes[0, 3] > raw.boxes[0, 3] and fitted.boxes[0, 1] > raw.boxes[0, 1]  # moved down
    assert CenterFace().describe()["box_fit"] == list(BOX_FIT)
    assert CenterFace(box_fit=None).describe()["box_fit"] is None


def test_box_fit_option_gives_the_network_boxes_or_a_custom_fit(tmp_path):
    """detect --box-fit none writes CenterFace's own box; a custom fit moves it as asked; bad values: one line."""
    photo = SAMPLES / "astronaut.jpg"
    boxes = {}
    for fit in ("none", "1,1,0.5"):
        out = tmp_path / f"{fit}.jsonl"
        result = _run("detect", photo, "--no-save", "--jsonl", out, "--box-fit", fit)
        assert result.exit_code == 0, result.output
        boxes[fit] = np.array(json.loads(out.read_text())["faces"][0]["box"], np.float32)
    assert box_iou(boxes["none"][None], ASTRONAUT_FACE[None])[0, 0] > 0.95
    h = boxes["none"][3] - boxes["none"][1]
    np.testing.assert_allclose(boxes["1,1,0.5"], boxes["none"] + np.array([0, h / 2, 0, h / 2]), atol=0.15)
    for bad in ("1.1,1.05", "0,1,0.1", "wide"):
        result = _run("detect", photo, "--no-save", "--box-fit", bad)
        assert result.exit_code == 2 and "--box-fit" in result.output and "Traceback" not in result.output, bad


def test_detector_rejects_bad_settings_and_images():
    from maskwatch.errors import MaskwatchError

    with pytest.raises(MaskwatchError):
        CenterFace(size=16)
    with pytest.raises(MaskwatchError):
        CenterFace(threshold=0)
    with pytest.raises(MaskwatchError):
        CenterFace(box_fit=(0.0, 1.0, 0.1))
    with pytest.raises(ValueError):
        CenterFace().detect(np.zeros((10, 10), np.uint8))


def test_default_model_is_shipped_and_small():
    assert DEFAULT_MODEL_FILE.is_file()
    assert DEFAULT_MODEL_FILE.stat().st_size <= 20_000_000
    assert (ASSETS / "MODEL_CARD.md").is_file()


def test_pipeline_on_bundled_samples(pipeline):
    """group.jpg: four portraits in a row; the two without a drawn mask are real unmasked faces."""
    image = np.asarray(Image.open(SAMPLES / "group.jpg").convert("RGB"))
    result = pipeline.process(image, "group.jpg")
    assert pipeline.labels == list(CANONICAL_LABELS)
    faces = sorted(result.faces, key=lambda f: f.box[0])
    assert len(faces) == 4
    tile_of = [int((f.box[0] - 20) // 315) for f in faces]
    assert tile_of == [0, 1, 2, 3]
    assert faces[0].label == "without_mask" and faces[3].label == "without_mask"
    for f in faces:
        assert sum(f.probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert f.score == pytest.approx(max(f.probs.values()), abs=1e-6)
        assert len(f.landmarks) == 5
    solo = pipeline.process(np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB")))
    assert [f.label for f in solo.faces] == ["without_mask"]


def _check_schema(line: dict) -> None:
    assert set(line) == {"source", "frame", "width", "height", "faces"}
    assert isinstance(line["source"], str) and isinstance(line["width"], int) and isinstance(line["height"], int)
    assert line["frame"] is None or isinstance(line["frame"], int)
    for f in line["faces"]:
        assert set(f) == {"box", "det_score", "label", "score", "probs", "track_id"}
        x1, y1, x2, y2 = f["box"]
        assert 0 <= x1 < x2 <= line["width"] and 0 <= y1 < y2 <= line["height"]
        assert f["label"] in CANONICAL_LABELS and set(f["probs"]) == set(CANONICAL_LABELS)
        assert 0 <= f["det_score"] <= 1 and 0 <= f["score"] <= 1
        assert f["track_id"] is None or isinstance(f["track_id"], int)


def test_detect_cli_images_jsonl_and_bad_inputs(tmp_path):
    (tmp_path / "notes.md").write_text("hello")  # (a .txt SOURCE would be a manifest of paths)
    data = (SAMPLES / "astronaut.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "empty.jpg").write_bytes(b"")
    jsonl, saved = tmp_path / "out.jsonl", tmp_path / "annotated"
    result = _run(
        "detect",
        SAMPLES / "astronaut.jpg",
        SAMPLES / "group.jpg",
        tmp_path / "missing.jpg",
        tmp_path / "notes.md",
        tmp_path / "empty.jpg",
        tmp_path / "truncated.jpg",
        "--jsonl",
        jsonl,
        "--save-dir",
        saved,
    )
    assert result.exit_code == 1, result.output  # some inputs failed; the others were processed
    assert "Traceback" not in result.output
    for name in ("missing.jpg", "notes.md", "empty.jpg", "truncated.jpg"):
        assert sum(name in line and "skipped" in line for line in result.output.splitlines()) == 1, name
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [x["source"] for x in lines] == [str(SAMPLES / "astronaut.jpg"), str(SAMPLES / "group.jpg")]
    for line in lines:
        _check_schema(line)
    assert len(lines[0]["faces"]) == 1 and len(lines[1]["faces"]) == 4
    assert box_iou(np.array([lines[0]["faces"][0]["box"]]), ASTRONAUT_BOX[None])[0, 0] > 0.95
    assert sorted(p.name for p in saved.iterdir()) == ["astronaut.jpg", "group.jpg"]
    drawn = np.asarray(Image.open(saved / "astronaut.jpg"))
    original = np.asarray(Image.open(SAMPLES / "astronaut.jpg"))
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).max() > 100  # boxes drawn


def test_detect_single_photo_prints_faces_and_saves_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run("detect", SAMPLES / "astronaut.jpg")
    assert result.exit_code == 0, result.output
    assert "without_mask" in result.output and "1 face(s)" in result.output
    assert (tmp_path / "runs" / "detect" / "astronaut.jpg").is_file()
    nothing = _run("detect", SAMPLES / "astronaut.jpg", "--no-save", "--save-dir", tmp_path / "other")
    assert nothing.exit_code == 0 and not (tmp_path / "other").exists()


def _moving_face_video(path, astronaut: np.ndarray, frames: int = 24) -> None:
    face = np.asarray(Image.fromarray(astronaut[30:210, 150:300]).resize((120, 144)))
    with VideoWriter(path, 12) as writer:
        for i in range(frames):
            frame = np.full((240, 320, 3), 90, np.uint8)
            x = 20 + 6 * i
            frame[50:194, x : x + 120] = face
            writer.write(frame)


def test_video_round_trip_with_tracking(tmp_path, astronaut):
    video = tmp_path / "walk.mp4"
    _moving_face_video(video, astronaut)
    assert read_video_info(video)["frames"] == 24
    jsonl, saved = tmp_path / "v.jsonl", tmp_path / "out"
    result = _run("detect", video, "--jsonl", jsonl, "--save-dir", saved)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(24))
    for line in lines:
        _check_schema(line)
    assert all(len(x["faces"]) == 1 for x in lines)
    ids = {x["faces"][0]["track_id"] for x in lines[2:]}
    assert len(ids) == 1 and None not in ids  # one person, one track, from the second frame on
    assert "1 people" in result.output
    assert "face(s)" not in result.output  # the per-photo table is for a single photo, not every frame
    info = read_video_info(saved / "walk.mp4")
    assert info["frames"] == 24 and info["codec"] == "h264" and (info["width"], info["height"]) == (320, 240)
    every = _run("detect", video, "--jsonl", jsonl, "--every", "5", "--max-frames", "3", "--no-save")
    assert every.exit_code == 0, every.output
    assert [json.loads(x)["frame"] for x in jsonl.read_text().splitlines()] == [0, 5, 10]


def test_untracked_video_summary_counts_faces_per_label(tmp_path, astronaut):
    """--no-track: the summary counts the faces per label, as for photos (it used to end with "5 faces: ")."""
    import re

    video = tmp_path / "walk.mp4"
    _moving_face_video(video, astronaut, frames=8)
    result = _run("detect", video, "--no-track", "--max-frames", 5, "--no-save")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith(f"{video}: 5 frames"))
    faces = int(re.search(r"; (\d+) faces: ", line).group(1))
    counts = {k: int(n) for k, n in re.findall(r"(\w+) (\d+) \(\d+%\)", line)}
    assert faces == 5 and set(counts) == set(CANONICAL_LABELS) and sum(counts.values()) == faces, line


def test_maskwatch_model_takes_what_model_takes(tmp_path, toy_data, monkeypatch):
    """$MASKWATCH_MODEL may be a run folder, as --model may; a wrong one is named in the error (not 'reinstall').
    The inference side alone (runtime.load_classifier) refuses a checkpoint in one line, naming the variable."""
    from maskwatch.cli.common import load_model_option as load_classifier
    from maskwatch.errors import MaskwatchError
    from maskwatch.runtime.classifiers import load_classifier as load_onnx
    from maskwatch.train import TrainConfig, train

    run = train(
        TrainConfig(data=[str(toy_data)], out=str(tmp_path / "run"), model="cnn", image_size=48, epochs=1, workers=0)
    ).run_dir
    monkeypatch.setenv("MASKWATCH_MODEL", str(run))
    assert load_classifier(None).backend == load_classifier(run).backend == "torch"
    with pytest.raises(MaskwatchError, match=r"\$MASKWATCH_MODEL=.*training checkpoint, not an \.onnx file"):
        load_onnx(None)
    out = tmp_path / "c.jsonl"
    result = _run("classify", SAMPLES / "astronaut.jpg", "--no-reframe", "--jsonl", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["label"] in CANONICAL_LABELS
    assert load_classifier(DEFAULT_MODEL_FILE).backend == "onnxruntime"  # --model still wins over the variable
    for wrong in (tmp_path / "nope.onnx", SAMPLES / "astronaut.jpg"):
        monkeypatch.setenv("MASKWATCH_MODEL", str(wrong))
        result = _run("detect", SAMPLES / "astronaut.jpg", "--no-save")
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert "$MASKWATCH_MODEL" in result.output and str(wrong) in result.output, result.output
        assert "reinstall" not in result.output


def _classified(boxes: list[list[float]], probs: list[list[float]]) -> Faces:
    return Faces(np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32), probs=np.array(probs, np.float32))


def test_tracker_keeps_ids_and_smooths_labels():
    tracker = FaceTracker(CANONICAL_LABELS, fps=10, smoothing=0.3, min_frames=3)
    masked, bare = [0.9, 0.05, 0.05], [0.1, 0.85, 0.05]
    ids = []
    for i in range(10):
        a = [100 + 5 * i, 100, 160 + 5 * i, 170]
        b = [400 - 5 * i, 120, 450 - 5 * i, 180]
        glitch = i == 6  # one frame where the classifier calls the masked face bare
        faces = tracker.update(_classified([a, b], [bare if glitch else masked, bare]))
        ids.append(faces.track_id.tolist())
        if glitch:  # smoothed over the track: one bad frame does not flip it
            assert CANONICAL_LABELS[faces.label_index()[0]] == "with_mask"
            assert faces.probs[0, 0] == pytest.approx(0.3 * 0.1 + 0.7 * 0.9)
    assert ids[0] == [NO_TRACK, NO_TRACK] and ids[-1][0] >= 0 and ids[-1][1] >= 0 and ids[-1][0] != ids[-1][1]
    assert all(row == ids[-1] for row in ids[1:])
    summary = tracker.summary()
    assert summary["people"] == 2
    assert summary["counts"] == {"with_mask": 1, "without_mask": 1, "mask_worn_incorrectly": 0}
    assert summary["percent"]["with_mask"] == 50.0


class _FakeDetector:
    name = "fake"

    def detect(self, image):
        x = float(image[0, 0, 0])  # the frame number, written into the pixel
        return Faces(
            np.array([[10 + x, 10, 60 + x, 70], [200, 50, 250, 110]], np.float32),
            np.array([0.9, 0.8], np.float32),
            np.zeros((2, 5, 2), np.float32),
        )


class _CountingClassifier:
    backend = "fake"

    def __init__(self):
        self.labels = list(CANONICAL_LABELS)
        self.calls = 0

    def predict_images(self, images):
        self.calls += len(images)
        return np.tile(np.array([[0.8, 0.15, 0.05]], np.float32), (len(images), 1))


@pytest.mark.parametrize("stride", [1, 5])
def test_tracked_pipeline_classifies_tracks_every_n_frames(stride):
    """classify_every counts processed frames: ``detect --every 5`` passes the frame numbers 0, 5, 10, ..."""
    from maskwatch.detect.pipeline import Pipeline
    from maskwatch.detect.tracking import TrackedPipeline

    clf = _CountingClassifier()
    tracked = TrackedPipeline(Pipeline(_FakeDetector(), clf), fps=10, classify_every=3)
    results = []
    for i in range(12):
        image = np.full((240, 320, 3), i, np.uint8)
        results.append(tracked.process(image, "cam", stride * i))
    # frame 0: no confirmed track yet (2 crops); from frame 1 both are tracks, classified at 1, 4, 7, 10
    assert clf.calls == 2 + 2 * 4
    assert [r.frame for r in results] == [stride * i for i in range(12)]  # the JSON keeps the decoded numbers
    assert all(f.track_id is not None for r in results[1:] for f in r.faces)
    assert all(f.label == "with_mask" for r in results for f in r.faces)
    assert all(f.probs["with_mask"] == pytest.approx(0.8) for r in results[1:] for f in r.faces)
    assert tracked.summary()["people"] == 2


def test_summarise_counts_and_percentages():
    s = summarise(["with_mask", "with_mask", "without_mask"], CANONICAL_LABELS)
    assert s == {
        "faces": 3,
        "counts": {"with_mask": 2, "without_mask": 1, "mask_worn_incorrectly": 0},
        "percent": {"with_mask": 66.7, "without_mask": 33.3, "mask_worn_incorrectly": 0.0},
    }
    assert summarise([], CANONICAL_LABELS)["percent"]["with_mask"] == 0.0


def test_evaluate_detect_on_generated_scenes(tmp_path, astronaut):
    """Scenes with the astronaut's face pasted at known places, annotated as without_mask."""
    root = tmp_path / "voc"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    face = np.asarray(Image.fromarray(astronaut).resize((256, 256)))
    box = ASTRONAUT_BOX * 0.5
    for i in range(3):
        scene = np.full((400, 640, 3), 60 + 40 * i, np.uint8)
        x, y = 40 + 150 * i, 60
        scene[y : y + 256, x : x + 256] = face
        Image.fromarray(scene).save(root / "images" / f"s{i}.jpg")
        b = box + np.array([x, y, x, y])
        (root / "annotations" / f"s{i}.xml").write_text(
            f"<annotation><filename>s{i}.jpg</filename><object><name>without_mask</name><bndbox>"
            f"<xmin>{b[0]:.0f}</xmin><ymin>{b[1]:.0f}</ymin><xmax>{b[2]:.0f}</xmax><ymax>{b[3]:.0f}</ymax>"
            "</bndbox></object></annotation>"
        )
    out = tmp_path / "report"
    result = _run("evaluate-detect", "--data", root, "--out", out)
    assert result.exit_code == 0, result.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["counts"]["images"] == 3 and m["counts"]["gt_faces_total"] == 3
    assert m["faces"]["iou50"]["recall"] == 1.0 and m["faces"]["iou50"]["precision"] == 1.0
    assert m["label_accuracy"] == 1.0 and m["ap50"]["without_mask"] == pytest.approx(1.0)
    assert (out / "predictions.jsonl").is_file() and (out / "detection_confusion.png").is_file()
    # the report reads back: the same scenes and faces, and the same AP from its predictions.jsonl
    from maskwatch.evaluate.bootstrap import ap50
    from maskwatch.evaluate.scenes import read_scene_report

    read = read_scene_report(out, root)
    assert [g.image_id for g in read.gts] == ["s0.jpg", "s1.jpg", "s2.jpg"] and read.metrics == m
    assert [len(p.boxes) for p in read.preds] == [1, 1, 1] and read.preds[0].probs.shape == (1, 3)
    assert ap50(read.gts, read.preds, m["pipeline"]["classifier"]["labels"])["without_mask"] == pytest.approx(1.0)
    # two models side by side on the same scenes (here the shipped one twice: every change is exactly 0)
    from maskwatch.runtime.classifiers import default_model_path

    both = tmp_path / "both"
    model = str(default_model_path())
    result = _run("evaluate-detect", "--data", root, "--out", both, "--model", model, "--model", model)
    assert result.exit_code == 0, result.output
    cmp = json.loads((both / "comparison.json").read_text())
    assert [r["model"] for r in cmp["rows"]] == ["mask-classifier", "mask-classifier-2"]
    assert cmp["rows"][1]["ap50_without_mask"] == pytest.approx(m["ap50"]["without_mask"])
    assert set(cmp["rows"][1]["delta"].values()) <= {0.0, None}
    assert (both / "mask-classifier-2" / "metrics.json").is_file() and (both / "comparison.png").is_file()
    assert "| ap50_without_mask | 1.0000 | 1.0000 (+0.0000) |" in (both / "comparison.md").read_text()
    # the same model twice: every bootstrap draw changes nothing, so each interval is exactly [0, 0]
    ci = cmp["rows"][1]["ci95"]
    assert cmp["bootstrap"]["draws"] == 1000 and ci["ap50_without_mask"]["low"] == ci["ap50_without_mask"]["high"] == 0
    assert ci["ap50_with_mask"]["change"] is None  # no with_mask face in these scenes: no AP, no interval
    assert "paired bootstrap" in (both / "comparison.md").read_text()
    bad = _run("evaluate-detect", "--data", root, "--out", both, "--model", model, "--model", model, "--bootstrap", -1)
    assert bad.exit_code == 2 and "--bootstrap" in bad.output


def test_default_inference_does_not_need_torch():
    """detect with the shipped ONNX model runs on onnxruntime alone: PyTorch is not even imported."""
    import subprocess
    import sys

    photo = SAMPLES / "astronaut.jpg"
    code = (
        "import sys, numpy as np\n"
        "from PIL import Image\n"
        "from maskwatch.detect.pipeline import load_pipeline\n"
        "from maskwatch.detect.run import DetectOptions, detect_sources\n"
        "p = load_pipeline()\n"
        f"r = p.process(np.asarray(Image.open({str(photo)!r}).convert('RGB')))\n"
        "seen = []\n"
        f"report = detect_sources([{str(photo)!r}], p, DetectOptions(), seen.append)\n"
        "print(len(r.faces), len(seen), sum(len(x.faces) for x in seen), report.failed, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    faces, results, detected, failed, torch_imported = out.stdout.split()[-5:]
    # the astronaut's face was found and classified, once directly and once through detect_sources
    assert int(faces) >= 1 and int(results) == 1 and int(detected) >= 1 and failed == "False"
    assert torch_imported == "False"


def test_split_scenes_keeps_only_scenes_wholly_in_the_subset(tmp_path):
    from maskwatch.evaluate.scenes import split_scenes, write_scene_list

    split = tmp_path / "run" / "split"
    split.mkdir(parents=True)
    rows = {
        "train": ["/d/images/a.jpg#0", "/d/images/b.jpg#1", "/faces/with_mask/x.jpg"],
        "val": ["/d/images/c.jpg#0"],
        "test": ["/d/images/b.jpg#0", "/d/images/d.jpg#0", "/d/images/d.jpg#1", "/faces/without_mask/y.jpg"],
    }
    for part, ids in rows.items():
        lines = ["id,label,group,path", *(f"{i},with_mask,0,{i}" for i in ids)]
        (split / f"{part}.csv").write_text("\n".join(lines) + "\n")
    inside, elsewhere = split_scenes(tmp_path / "run", "test")
    assert inside == {"d.jpg"}  # b.jpg has a face in train too: not held out
    assert elsewhere == {"a.jpg", "b.jpg", "c.jpg"}
    listed = tmp_path / "scenes.txt"
    write_scene_list(listed, inside, "test scenes")
    assert split_scenes(listed)[0] == {"d.jpg"}


def test_detect_reads_a_video_over_http(tmp_path, astronaut):
    """A stream URL: the synthetic video served by a local HTTP server, read through OpenCV's FFmpeg backend."""
    import functools
    import http.server
    import threading

    _moving_face_video(tmp_path / "walk.mp4", astronaut, frames=12)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/walk.mp4"
        jsonl = tmp_path / "s.jsonl"
        result = _run("detect", url, "--jsonl", jsonl, "--no-save", "--max-frames", "6")
        assert result.exit_code == 0, result.output
        lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
        assert [x["frame"] for x in lines] == list(range(6))
        assert all(x["source"] == url and len(x["faces"]) == 1 for x in lines)
        missing = _run("detect", url.replace("walk", "nothing"), "--no-save")
        assert missing.exit_code == 1 and "Traceback" not in missing.output
    finally:
        server.shutdown()


def _drawn_faces() -> Faces:
    return Faces(
        np.array([[20, 40, 90, 120], [150, 60, 230, 150]], np.float32),
        np.array([0.9, 0.8], np.float32),
        probs=np.array([[0.97, 0.02, 0.01], [0.1, 0.81, 0.09]], np.float32),
        track_id=np.array([NO_TRACK, 3]),
    )


def test_annotator_draws_boxes_in_the_label_colour_and_captions():
    from maskwatch.detect.annotate import Annotator
    from maskwatch.labels import label_color

    annotator = Annotator(CANONICAL_LABELS)
    faces = _drawn_faces()
    assert annotator.captions(faces) == ["mask 0.97", "#3 no mask 0.81"]
    image = np.zeros((200, 260, 3), np.uint8)
    drawn = annotator.draw(image, faces)
    assert not image.any()  # a copy is drawn on
    for (x1, y1, x2, y2), label in zip(faces.boxes.astype(int).tolist(), ["with_mask", "without_mask"], strict=True):
        color = label_color(label)  # RGB, as the image is
        for x, y in [(x1, (y1 + y2) // 2), (x2, (y1 + y2) // 2), ((x1 + x2) // 2, y2), (x1 + 1, y2)]:
            assert tuple(drawn[y, x]) == color, (label, x, y)
        assert tuple(drawn[y1 - 2, x1 + 1]) == color  # the caption box, filled, above the top-left corner
        assert (drawn[y1 - 16 : y1 - 4, x1 + 4 : x1 + 40] == 255).all(axis=2).any()  # white text in it
        assert not drawn[(y1 + y2) // 2, (x1 + x2) // 2].any()  # the face itself is not painted over
    assert (annotator.draw(image, Faces()) == 0).all()


def test_annotator_takes_a_frame_result_too():
    """serve/app.py draws the FrameResult it holds."""
    from maskwatch.detect.annotate import Annotator

    faces = _drawn_faces()
    result = FrameResult.from_faces(faces, CANONICAL_LABELS, "x", None, 260, 200)
    image = np.zeros((200, 260, 3), np.uint8)
    annotator = Annotator(CANONICAL_LABELS)
    np.testing.assert_array_equal(annotator.draw(image, result), annotator.draw(image, faces))


def test_frame_result_json_from_faces():
    result = FrameResult.from_faces(_drawn_faces(), CANONICAL_LABELS, "cam", 7, 260, 200)
    out = result.to_json()
    assert list(out) == ["source", "frame", "width", "height", "faces"]
    assert out["faces"][0] == {
        "box": [20.0, 40.0, 90.0, 120.0],
        "det_score": 0.9,
        "label": "with_mask",
        "score": 0.97,
        "probs": {"with_mask": 0.97, "without_mask": 0.02, "mask_worn_incorrectly": 0.01},
        "track_id": None,
    }
    assert out["faces"][1]["track_id"] == 3 and out["faces"][1]["label"] == "without_mask"
    assert list(result.to_json(landmarks=True)["faces"][0])[-1] == "landmarks"
    assert result.counts(list(CANONICAL_LABELS)) == {"with_mask": 1, "without_mask": 1, "mask_worn_incorrectly": 0}


def test_faces_indexing_take_and_concat_keep_every_column():
    faces = _drawn_faces()
    for part in (faces[1], faces.take([1]), faces[np.array([False, True])], faces[1:]):
        assert len(part) == 1 and part.track_id.tolist() == [3] and part.probs.shape == (1, 3)
        assert part.boxes.tolist() == [[150, 60, 230, 150]] and part.landmarks.shape == (1, 5, 2)
    both = Faces.concat([faces[1], Faces(), faces[0]])
    assert both.track_id.tolist() == [3, NO_TRACK] and both.probs[1, 0] == pytest.approx(0.97)
    assert Faces(np.zeros((2, 4))).track_id.tolist() == [NO_TRACK, NO_TRACK] and not Faces(np.zeros((2, 4))).classified
    with pytest.raises(ValueError, match="disagree"):
        Faces(np.zeros((2, 4)), np.zeros(3))


def test_show_without_a_gui_opencv_says_so_in_one_line_and_goes_on(monkeypatch, capsys):
    from maskwatch.detect import run

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(run, "opencv_has_gui", lambda: False)
    display = run._Display()
    assert not display.enabled and display.show("x", np.zeros((4, 4, 3), np.uint8))
    display.close()
    out = capsys.readouterr().err  # the console writes to stderr
    assert out.strip() == run.GUI_HINT and "pip install opencv-python" in out
