"""``maskwatch detect``'s outputs and messages: inputs are never written over, a photo that cannot be saved (or is
too wide for JPEG) does not stop the run, skip lines show file names exactly, and each input counts once."""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.runtime.classifiers import ASSETS

PHOTO = ASSETS / "samples" / "astronaut.jpg"
runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_save_dir_holding_the_inputs_never_overwrites_them(tmp_path):
    """--save-dir is the photos' folder: the annotated copy gets a -annotated name; a second run (whose inputs now
    include that copy) writes over neither."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(PHOTO, photos / "astronaut.jpg")
    original = PHOTO.read_bytes()
    result = _run("detect", photos, "--save-dir", photos)
    assert result.exit_code == 0, result.output
    assert (photos / "astronaut.jpg").read_bytes() == original
    drawn = np.asarray(Image.open(photos / "astronaut-annotated.jpg")).astype(int)
    assert np.abs(drawn - np.asarray(Image.open(PHOTO))).max() > 100  # the boxes are in the copy
    assert "-annotated" in result.output  # one note says where the copies went
    first_copy = (photos / "astronaut-annotated.jpg").read_bytes()
    again = _run("detect", photos, "--save-dir", photos)
    assert again.exit_code == 0, again.output
    assert (photos / "astronaut.jpg").read_bytes() == original
    assert (photos / "astronaut-annotated.jpg").read_bytes() == first_copy
    assert sorted(p.name for p in photos.iterdir()) == [
        "astronaut-annotated-1.jpg",
        "astronaut-annotated-2.jpg",
        "astronaut-annotated.jpg",
        "astronaut.jpg",
    ]


def test_a_photo_too_wide_for_jpeg_or_unwritable_does_not_stop_the_run(tmp_path):
    """A valid 100000 x 10 PNG (JPEG stops at 65500 px): its annotated copy is a PNG. A copy that cannot be
    written (a folder in its way) is one line naming the photo; the other photos are still processed."""
    photos, out, jsonl = tmp_path / "photos", tmp_path / "out", tmp_path / "out.jsonl"
    photos.mkdir()
    shutil.copy(PHOTO, photos / "astronaut.jpg")
    Image.fromarray(np.full((10, 100_000, 3), 90, np.uint8)).save(photos / "wide.png")
    result = _run("detect", photos, "--save-dir", out, "--jsonl", jsonl)
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["width"] for x in jsonl.read_text().splitlines()] == [512, 100_000]
    assert Image.open(out / "wide.png").size == (100_000, 10) and Image.open(out / "astronaut.jpg").size == (512, 512)

    shutil.rmtree(out)
    (out / "astronaut.jpg").mkdir(parents=True)  # the copy cannot be written there
    jsonl = tmp_path / "again.jsonl"
    result = _run("detect", photos, "--save-dir", out, "--jsonl", jsonl)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if "not saved" in line]
    assert len(lines) == 1 and str(photos / "astronaut.jpg") in lines[0], result.output
    assert len(jsonl.read_text().splitlines()) == 2 and (out / "wide.png").is_file()


def test_skip_lines_show_file_names_with_brackets_exactly(tmp_path):
    """File names are not rich markup: ``IMG [party] b.jpg`` keeps its brackets and ``nope[/].jpg`` is a skip line,
    not a crash."""
    folder = tmp_path / "mk"
    folder.mkdir()
    for name in ("IMG [party] b.jpg", "[bold]c.jpg"):
        (folder / name).write_bytes(b"")
    result = _run("detect", folder, tmp_path / "nope[/].jpg", "--no-save")
    assert result.exit_code == 1 and "Traceback" not in result.output and "MarkupError" not in result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 3, result.output
    for name in ("IMG [party] b.jpg", "[bold]c.jpg", "nope[/].jpg"):
        assert sum(str(tmp_path) in line and name in line for line in skipped) == 1, (name, result.output)


def test_inputs_named_twice_are_processed_once(tmp_path):
    """A folder, one of its files and a glob over it name 2 photos: 2 images, 2 JSON lines, in first-seen order."""
    photos, jsonl = tmp_path / "photos", tmp_path / "out.jsonl"
    photos.mkdir()
    shutil.copy(PHOTO, photos / "a.jpg")
    shutil.copy(PHOTO, photos / "b.jpg")
    result = _run("detect", photos / "b.jpg", photos, str(photos / "*.jpg"), "--no-save", "--jsonl", jsonl)
    assert result.exit_code == 0, result.output
    sources = [json.loads(x)["source"] for x in jsonl.read_text().splitlines()]
    assert sources == [str(photos / "b.jpg"), str(photos / "a.jpg")]
    assert "images: 2 images; 2 faces" in result.output
