"""The bad-input campaign's guard (bench/bad_inputs.py --quick) and the rules behind it: a decoding budget for
every path, no silent skip in folders and globs, names printed safely, PyAV's reasons for streams."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskwatch.data.images import (
    BadImageError,
    ImageTooLargeError,
    decode_budget,
    decode_bytes,
    decode_rgb,
    open_rgb,
    set_decode_budget,
)
from maskwatch.detect.sources import Input, SourceError, iter_frames, resolve_inputs
from maskwatch.progress import printable, shown

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bad_inputs", ROOT / "bench" / "bad_inputs.py")
bad = importlib.util.module_from_spec(spec)
sys.modules["bad_inputs"] = bad
spec.loader.exec_module(bad)


@pytest.fixture(autouse=True)
def _default_budget(monkeypatch):
    monkeypatch.delenv("MASKWATCH_MAX_DECODE_MB", raising=False)
    set_decode_budget(None)
    yield
    set_decode_budget(None)


BOMBS = {
    "png-1bit.png": lambda: bad.png_claiming(1, 170_000_000, rows=4),
    "png-16bit.png": lambda: bad.png_claiming(12_000, 12_000, depth=16, rows=4),
    "gif.gif": lambda: bad.gif_claiming(12_000, 12_000),
    "tiff.tif": lambda: bad.tiff_claiming(12_000, 12_000),
    "tiff-float.tif": lambda: bad.tiff_claiming(8_000, 8_000, 32, 3),
    "webp.webp": lambda: bad.webp_claiming(12_000, 12_000),
    "jpeg.jpg": lambda: bad.jpeg_claiming(12_000, 12_000),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_every_kind_of_bomb_is_refused_before_decoding_with_its_size(name, tmp_path):
    data = BOMBS[name]()
    assert len(data) < 50_000
    for call in (lambda: decode_rgb(data, name), lambda: open_rgb(_write(tmp_path / name, data))):
        with pytest.raises(ImageTooLargeError) as info:
            call()
        reason = info.value.reason
        assert "decoding budget of 768 MB" in reason and " x " in reason and "MB decoded" in reason
        assert "--max-decode-mb" in reason


def test_the_budget_is_a_setting_and_a_large_one_lets_the_image_through(tmp_path, monkeypatch):
    data = bad.png_claiming(4000, 4000)  # 16 Mpx of 1-bit zeros: 128 MB by the estimate
    assert decode_rgb(data, "ok.png").size == (4000, 4000)
    monkeypatch.setenv("MASKWATCH_MAX_DECODE_MB", "100")
    assert decode_budget() == 100_000_000
    with pytest.raises(ImageTooLargeError, match=r"4,000 x 4,000 pixels \(128 MB decoded\) .* budget of 100 MB"):
        decode_rgb(data, "ok.png")
    set_decode_budget(200)  # --max-decode-mb wins over the environment
    assert decode_rgb(data, "ok.png").size == (4000, 4000)
    assert decode_bytes(10, 10, "I;16") > decode_bytes(10, 10, "L")


def test_pixel_limits_show_the_image_size_beside_the_limit():
    with pytest.raises(ImageTooLargeError, match=r"too many pixels \(101x100 = 10,100 pixels > 10,000\)"):
        decode_rgb(bad.png_claiming(101, 100), "u.png", max_pixels=10_000)
    with pytest.raises(ImageTooLargeError, match=r"400,000,000 pixels, over Pillow's limit of 178,956,970"):
        decode_rgb(bad.png_claiming(20_000, 20_000, rows=4), "u.png")


def test_a_strip_is_scaled_down_before_it_is_padded(monkeypatch):
    """find_face (classify's reframing) and the detector never pad or scale a 100000 x 10 strip at full size."""
    from maskwatch.detect import reframe
    from maskwatch.detect.faces import Faces

    seen = []

    class Recorder:
        def detect(self, image):
            seen.append(image.shape)
            return Faces()

    strip = Image.new("RGB", (100_000, 10), (128, 128, 128))
    assert reframe.find_face(Recorder(), strip) is None
    assert max(seen[0][:2]) <= reframe.FIND_FACE_MAX_SIDE
    from maskwatch.detect import detector as det

    monkeypatch.setattr(det, "MAX_NET_PIXELS", 100_000)
    cf = det.CenterFace(size=0)
    shapes = []

    class Session:
        def run(self, _, feeds):
            blob = feeds["input.1"]
            shapes.append(blob.shape)
            h, w = blob.shape[2] // 4, blob.shape[3] // 4
            return [
                np.zeros((1, 1, h, w), np.float32),
                np.zeros((1, 2, h, w)),
                np.zeros((1, 2, h, w)),
                np.zeros((1, 10, h, w)),
            ]

    cf.__dict__["session"] = Session()
    cf.detect(np.zeros((1000, 1000, 3), np.uint8))  # native size: 1 Mpx, capped to 0.1 Mpx
    assert shapes[0][2] * shapes[0][3] <= 2 * 100_000


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _photo(path: Path) -> Path:
    Image.new("RGB", (32, 32), (200, 100, 50)).save(path)
    return path


def test_every_folder_entry_ends_as_an_input_or_a_named_error(tmp_path):
    _photo(tmp_path / "ok.jpg")
    os.symlink("loop.jpg", tmp_path / "loop.jpg")
    os.symlink("gone.jpg", tmp_path / "dangling.jpg")
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "sub").mkdir()
    os.symlink("..", tmp_path / "sub" / "up")
    (tmp_path / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (tmp_path / "notes.txt").write_text("x")
    ignored: list[str] = []
    inputs, errors = resolve_inputs(str(tmp_path), ignored)
    assert [Path(i.location).name for i in inputs] == ["ok.jpg"]
    reasons = {Path(e.source).name: e.reason for e in errors}
    assert reasons["loop.jpg"].startswith("symbolic link loop")
    assert reasons["dangling.jpg"].startswith("dangling symbolic link")
    assert reasons["fifo.jpg"] == "not a regular file: a FIFO (named pipe)"
    assert reasons["up"].startswith("symbolic link loop")
    assert reasons["photo.heic"] == "unsupported format (HEIC): convert it or pip install pillow-heif"
    assert ignored == [str(tmp_path / "notes.txt")]
    # a glob reports the same entries; named directly, each one is reported too (the FIFO never opened)
    _, glob_errors = resolve_inputs(str(tmp_path / "*.jpg"))
    assert {Path(e.source).name for e in glob_errors} == {"loop.jpg", "dangling.jpg", "fifo.jpg"}
    assert "FIFO" in resolve_inputs(str(tmp_path / "fifo.jpg"))[1][0].reason
    with pytest.raises(BadImageError, match="not a regular file: a FIFO"):
        open_rgb(tmp_path / "fifo.jpg")  # would block for ever if it were opened


def test_a_folder_that_cannot_be_listed_is_an_error_line(tmp_path, monkeypatch):
    """chmod 000 does not stop root, so the listing itself is refused here (and really, when not root)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    _photo(locked / "a.jpg")
    real = os.scandir

    def scandir(path="."):
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    _, errors = resolve_inputs(str(tmp_path))
    assert errors == [SourceError(str(locked), "cannot list folder (Permission denied)")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder (the scandir case above covers it)")
def test_a_chmod_000_folder_is_an_error_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    _photo(locked / "a.jpg")
    locked.chmod(0)
    try:
        _, errors = resolve_inputs(str(tmp_path))
    finally:
        locked.chmod(0o755)
    assert [e.source for e in errors] == [str(locked)]


def test_avif_is_decoded_when_this_pillow_can(tmp_path):
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF")
    Image.new("RGB", (32, 32), (10, 200, 30)).save(tmp_path / "a.avif")
    inputs, errors = resolve_inputs(str(tmp_path))
    assert not errors and open_rgb(inputs[0].location).size == (32, 32)


def test_printable_escapes_control_characters_and_shown_markup_too():
    assert printable("a\nb\x1b[31mc\td\re\x7f\u202ef") == "a\\nb\\x1b[31mc\\td\\re\\x7f\\u202ef"
    assert printable("ünïcødé 照片 [x].jpg") == "ünïcødé 照片 [x].jpg"
    assert printable(os.fsdecode(b"bad\xff.jpg")) == "bad\\xff.jpg"
    assert shown("[red]x\n") == "\\[red]x\\n"


def test_pillow_warnings_name_the_file(caplog):
    exif = b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + b"\x00" * 40
    data = bad._exif_jpeg(exif)
    with caplog.at_level("WARNING", logger="maskwatch.data.images"):
        decode_rgb(data, "odd\nname.jpg")
    assert any("odd\\nname.jpg: Pillow: " in r.getMessage() for r in caplog.records)


class _Refused:
    def __init__(self, error: str) -> None:
        self.error = error

    def isOpened(self) -> bool:
        return False

    def release(self) -> None:
        pass


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("HTTP Error 404 Not Found", "stream answered HTTP Error 404 Not Found"),
        ("Invalid data found when processing input", "not a video stream (Invalid data found when processing input)"),
        ("Connection refused", "cannot connect to stream (Connection refused)"),
    ],
)
def test_a_stream_that_does_not_open_says_what_happened(error, reason):
    (item,) = iter_frames(Input("stream", "http://cam/x"), capture_factory=lambda inp: _Refused(error))
    assert item == SourceError("http://cam/x", reason)


def test_video_frames_over_the_budget_are_refused_before_decoding(tmp_path):
    from maskwatch.detect.sources import AvCapture
    from maskwatch.detect.video import VideoWriter

    path = tmp_path / "v.mp4"
    writer = VideoWriter(path, 10)
    for _ in range(3):
        writer.write(np.zeros((64, 96, 3), np.uint8))
    writer.close()
    set_decode_budget(0.01)  # 10 kB: a 96 x 64 frame is more
    cap = AvCapture(str(path))
    assert not cap.isOpened() and "96 x 64 pixels" in cap.error and "decoding budget" in cap.error
    (item,) = iter_frames(Input("video", str(path)))
    assert isinstance(item, SourceError) and "decoding budget of 0.0 MB" in item.reason


def test_the_quick_campaign_has_no_crash_no_traceback_no_silent_skip():
    """bench/bad_inputs.py --quick: detect and classify over the generated folder in subprocesses."""
    c, runs, decoded = bad.campaign(quick=True)
    assert not bad.failures(runs, decoded), [(r.name, r.missing, r.stderr[-2000:]) for r in runs]
    detect = runs[0]
    assert "; 1 other file ignored" in detect.stderr and "(exit 1; --no-fail-on-errors: exit 0)" in detect.stderr
    assert "\x1b" not in detect.stderr and "new\\nline.jpg" not in detect.stderr  # results are no error lines
    assert len(c.entries) == detect.results + detect.errors + 1  # + the locked folder, whose photo is a result


def test_no_fail_on_errors_keeps_exit_0(tmp_path):
    from typer.testing import CliRunner

    from maskwatch.cli import app

    _photo(tmp_path / "ok.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    os.symlink("gone.jpg", tmp_path / "dangling.jpg")
    runner = CliRunner()
    args = ["classify", str(tmp_path), "--no-reframe", "--jsonl", str(tmp_path / "out.jsonl")]
    failed = runner.invoke(app, args)
    assert failed.exit_code == 1, failed.output
    kept = runner.invoke(app, [*args, "--no-fail-on-errors"])
    assert kept.exit_code == 0, kept.output
    assert "1 image classified; 2 failed" in kept.output and "exit 0: --no-fail-on-errors" in kept.output
    refused = runner.invoke(app, [*args, "--max-decode-mb", "0"])
    assert refused.exit_code == 2 and "--max-decode-mb must be positive" in refused.output


def test_bad_budget_in_the_environment_falls_back_to_the_default(monkeypatch):
    monkeypatch.setenv("MASKWATCH_MAX_DECODE_MB", "lots")
    assert decode_budget() == 768_000_000
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    assert decode_rgb(buf.getvalue()).size == (8, 8)
