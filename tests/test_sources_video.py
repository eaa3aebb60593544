"""Frame sources (files, folders, globs, webcams, streams) and the browser-playable MP4 writer."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskwatch.detect import sources
from maskwatch.detect.sources import (
    PROP_FPS,
    PROP_FRAME_COUNT,
    Frame,
    Input,
    SourceError,
    iter_frames,
    resolve_inputs,
)
from maskwatch.detect.video import VideoWriter, frame_rate, read_video_info
from maskwatch.errors import MaskwatchError

RED = (255, 0, 0)


def moving_square(i: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Dark frame with a 16 px red square moving right by 1 px a frame."""
    image = np.full((height, width, 3), 20, np.uint8)
    image[16:32, i : i + 16] = RED
    return image


def write_video(path: Path, n: int = 30, width: int = 64, height: int = 48, fps: float = 10, **kw) -> Path:
    with VideoWriter(path, fps, **kw) as writer:
        for i in range(n):
            writer.write(moving_square(i, width, height))
    assert writer.frames_written == n
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "out" / "clip.mp4", keyframe_interval=0.5)


def frames_of(items) -> list[Frame]:
    items = list(items)
    assert all(isinstance(item, Frame) for item in items), items
    return items


# ------------------------------------------------------------------------------------------------------- writer


def test_round_trip_h264(video):
    assert read_video_info(video) == {
        "frames": 30,
        "fps": pytest.approx(10),
        "width": 64,
        "height": 48,
        "codec": "h264",
    }
    frames = frames_of(iter_frames(Input("video", str(video))))
    assert [f.index for f in frames] == list(range(30))
    first = frames[0]
    assert first.source == str(video) and first.fps == pytest.approx(10)
    assert first.image.shape == (48, 64, 3) and first.image.dtype == np.uint8 and first.image.flags.c_contiguous
    square = first.image[18:30, 2:14].reshape(-1, 3).mean(axis=0)  # inside the square, away from its edges
    assert square[0] > 200 and square[1] < 60 and square[2] < 60  # red stays red: no BGR/RGB mix-up
    assert first.image[40:, 40:].mean() < 40
    # the square moved: frame 20 has it 20 px further right
    assert frames[20].image[18:30, 24:34, 0].mean() > 200 and frames[20].image[18:30, 2:14, 0].mean() < 60


def test_odd_size_is_padded_and_fractional_fps_kept(tmp_path):
    path = write_video(tmp_path / "odd.mp4", n=12, width=65, height=49, fps=30000 / 1001)
    info = read_video_info(path)
    assert (info["width"], info["height"], info["frames"]) == (66, 50, 12)
    assert info["fps"] == pytest.approx(29.97, abs=0.001)
    frame = next(iter(iter_frames(Input("video", str(path)))))
    assert frame.image.shape == (50, 66, 3)


def test_frame_rate():
    assert frame_rate(29.97002997002997) == frame_rate(30000 / 1001) and frame_rate(30000 / 1001).denominator == 1001
    assert float(frame_rate(29.97)) == pytest.approx(29.97)
    assert frame_rate(None) == frame_rate(0) == frame_rate(-5) == frame_rate(float("nan")) == 25


def test_writer_resizes_later_frames_and_closes_once(tmp_path):
    path = tmp_path / "a" / "b" / "mixed.mp4"
    writer = VideoWriter(path, None)
    writer.write(moving_square(0))
    writer.write(moving_square(0, 32, 24))
    writer.write(np.zeros((100, 100, 3), np.uint8))
    assert writer.size == (64, 48)
    writer.close()
    writer.close()
    with pytest.raises(RuntimeError):
        writer.write(moving_square(0))
    info = read_video_info(path)
    assert (info["frames"], info["width"], info["height"], info["fps"]) == (3, 64, 48, pytest.approx(25))


def test_writer_rejects_bad_frames_and_writes_nothing_without_frames(tmp_path):
    with VideoWriter(tmp_path / "none.mp4", 10) as writer:
        with pytest.raises(ValueError):
            writer.write(np.zeros((8, 8, 3), np.float32))
        with pytest.raises(ValueError):
            writer.write(np.zeros((8, 8, 2), np.uint8))
    assert not (tmp_path / "none.mp4").exists()


def test_killed_writer_leaves_a_playable_file(tmp_path):
    """Fragmented MP4 + flushed packets: a process that dies without close() leaves the fragments so far."""
    path = tmp_path / "killed.mp4"
    code = (
        "import os, sys, numpy as np\n"
        "from maskwatch.detect.video import VideoWriter\n"
        "w = VideoWriter(sys.argv[1], 10, keyframe_interval=0.5)\n"
        "for i in range(60):\n"
        "    f = np.full((48, 64, 3), 20, np.uint8); f[16:32, i % 48 : i % 48 + 16] = 255; w.write(f)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    info = read_video_info(path)
    assert 20 <= info["frames"] < 60 and info["codec"] == "h264"


# ------------------------------------------------------------------------------------------------ reading files


def test_every_and_max_frames(video):
    inp = Input("video", str(video))
    assert [f.index for f in frames_of(iter_frames(inp, every=3))] == list(range(0, 30, 3))
    assert [f.index for f in frames_of(iter_frames(inp, max_frames=4))] == [0, 1, 2, 3]
    assert [f.index for f in frames_of(iter_frames(inp, every=7, max_frames=3))] == [0, 7, 14]
    assert list(iter_frames(inp, max_frames=0)) == []
    with pytest.raises(MaskwatchError):
        iter_frames(inp, every=0)  # raised at the call, not at the first next()


def test_truncated_video_yields_the_frames_before_the_cut(video, tmp_path):
    data = video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    items = list(iter_frames(Input("video", str(cut))))
    frames = [item for item in items if isinstance(item, Frame)]
    assert 0 < len(frames) < 30
    assert [f.index for f in frames] == list(range(len(frames)))


def test_unopenable_video_is_a_source_error(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video at all")
    (item,) = iter_frames(Input("video", str(fake)))
    assert isinstance(item, SourceError) and item.source == str(fake)
    (item,) = iter_frames(Input("video", str(tmp_path / "gone.mp4")))
    assert isinstance(item, SourceError) and item.reason == "does not exist"


# ---------------------------------------------------------------------------------------------------- resolving


def test_resolve_folder(video, tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    Image.new("RGB", (20, 10), (10, 200, 30)).save(root / "a.png")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(root / "sub" / "b.jpg")
    (root / "clip.mp4").write_bytes(video.read_bytes())
    (root / "notes.txt").write_text("ignored")
    png = (root / "a.png").read_bytes()
    (root / "broken.png").write_bytes(png[: len(png) // 2])

    inputs, errors = resolve_inputs(str(root))
    assert errors == []
    assert [(i.kind, Path(i.location).relative_to(root).as_posix()) for i in inputs] == [
        ("image", "a.png"),
        ("image", "broken.png"),
        ("video", "clip.mp4"),
        ("image", "sub/b.jpg"),
    ]
    (image,) = frames_of(iter_frames(inputs[0]))
    assert image.index is None and image.fps is None and image.source == str(root / "a.png")
    assert image.image.shape == (10, 20, 3) and tuple(image.image[5, 5]) == (10, 200, 30)
    (broken,) = iter_frames(inputs[1])
    assert isinstance(broken, SourceError) and broken.reason.startswith("cannot decode image")
    assert "\n" not in broken.reason and str(broken).startswith(str(root / "broken.png"))


def test_resolve_errors(tmp_path):
    (tmp_path / "only_text").mkdir()
    (tmp_path / "only_text" / "a.txt").write_text("x")
    (tmp_path / "readme.md").write_text("x")  # (a .txt SOURCE is a manifest of paths: test_detect)
    (tmp_path / "noext").write_text("x")
    for spec, words in [
        (tmp_path / "only_text", "no images or videos"),
        (tmp_path / "readme.md", "unknown extension .md"),
        (tmp_path / "noext", "no file extension"),
        (tmp_path / "missing.jpg", "does not exist"),
        (tmp_path / "*.jpg", "matches nothing"),
        (tmp_path / "*.md", "no image or video"),
    ]:
        inputs, errors = resolve_inputs(str(spec))
        assert inputs == [] and len(errors) == 1, spec
        assert words in errors[0].reason and errors[0].source == str(spec)


def test_resolve_single_files_and_glob(video, tmp_path):
    for name in ("b.png", "a.PNG", "c.jpg"):
        Image.new("RGB", (4, 4)).save(tmp_path / name, format="PNG" if name != "c.jpg" else "JPEG")
    assert resolve_inputs(str(tmp_path / "a.PNG")) == ([Input("image", str(tmp_path / "a.PNG"))], [])
    assert resolve_inputs(str(video)) == ([Input("video", str(video))], [])
    inputs, errors = resolve_inputs(str(tmp_path / "*.[pP][nN][gG]"))
    assert errors == [] and [Path(i.location).name for i in inputs] == ["a.PNG", "b.png"]


def test_resolve_webcam_and_urls():
    (cam,), errors = resolve_inputs("0")
    assert errors == [] and cam == Input("webcam", "0") and cam.name() == "webcam:0"
    assert resolve_inputs("12")[0][0].name() == "webcam:12"
    for url in ("rtsp://cam.local:554/live", "RTMP://x/y", "https://example.com/a.m3u8", "udp://@:1234"):
        assert resolve_inputs(url) == ([Input("stream", url)], [])
    (cam,), _ = resolve_inputs("rtsp://admin:s3cret@10.0.0.5:554/h264")
    assert cam.location == "rtsp://admin:s3cret@10.0.0.5:554/h264"
    assert cam.name() == "rtsp://admin:***@10.0.0.5:554/h264"
    inputs, (error,) = resolve_inputs("ftp://host/file.mp4")
    assert inputs == [] and "unsupported URL scheme" in error.reason


# ------------------------------------------------------------------------------- captures (fake AvCapture objects)


class FakeCapture:
    """An AvCapture stand-in: ``frames`` good reads (None = endless), then read() fails for good."""

    def __init__(self, frames: int | None = None, *, opened: bool = True, count: float = -1, fail_reads=()):
        self.frames, self.opened, self.count, self.fail_reads = frames, opened, count, set(fail_reads)
        self.pos = self.reads = 0
        self.released = False

    def isOpened(self) -> bool:
        return self.opened

    def read(self):
        self.reads += 1
        if self.reads - 1 in self.fail_reads or (self.frames is not None and self.pos >= self.frames):
            return False, None
        image = np.zeros((4, 6, 3), np.uint8)
        image[..., 2] = 255  # blue (captures hand over RGB)
        image[..., 1] = self.pos
        self.pos += 1
        return True, image

    def get(self, prop: int) -> float:
        return {PROP_FPS: 15.0, PROP_FRAME_COUNT: self.count}.get(prop, 0.0)

    def release(self) -> None:
        self.released = True


class Factory:
    """Hands out the given captures in turn, then ``then()`` for every further call."""

    def __init__(self, *captures: FakeCapture, then=lambda: FakeCapture(opened=False)):
        self.queue, self.then, self.made = list(captures), then, []

    def __call__(self, inp: Input) -> FakeCapture:
        cap = self.queue.pop(0) if self.queue else self.then()
        self.made.append(cap)
        return cap


def reconnect_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "reconnecting" in r.getMessage()]


def test_stream_reconnects_and_keeps_counting(caplog):
    caplog.set_level(logging.WARNING, logger="maskwatch.detect.sources")
    factory = Factory(FakeCapture(3), FakeCapture(opened=False), FakeCapture(opened=False), FakeCapture(None))
    inp = Input("stream", "rtsp://cam/live")
    frames = frames_of(iter_frames(inp, max_frames=7, reconnect=5, reconnect_delay=0, capture_factory=factory))
    assert [f.index for f in frames] == list(range(7))
    assert [int(f.image[0, 0, 1]) for f in frames] == [0, 1, 2, 0, 1, 2, 3]  # second connection starts afresh
    assert tuple(frames[0].image[0, 0]) == (0, 0, 255)  # RGB as handed over
    assert frames[0].fps == 15.0 and frames[0].source == "rtsp://cam/live"
    assert len(factory.made) == 4 and all(cap.released for cap in factory.made)
    assert len(reconnect_logs(caplog)) == 3 and "attempt 3 of 5" in reconnect_logs(caplog)[-1]


def test_reconnect_budget_is_per_outage(caplog):
    caplog.set_level(logging.WARNING, logger="maskwatch.detect.sources")
    factory = Factory(FakeCapture(2), FakeCapture(2), FakeCapture(2), FakeCapture(None))
    frames = frames_of(
        iter_frames(Input("stream", "udp://x"), max_frames=8, reconnect=1, capture_factory=factory, reconnect_delay=0)
    )
    assert [f.index for f in frames] == list(range(8)) and len(reconnect_logs(caplog)) == 3


def test_stream_that_never_recovers(caplog):
    caplog.set_level(logging.WARNING, logger="maskwatch.detect.sources")
    factory = Factory(FakeCapture(3))
    items = list(
        iter_frames(
            Input("stream", "rtsp://cam/live"), every=2, reconnect=3, reconnect_delay=0, capture_factory=factory
        )
    )
    assert [f.index for f in items[:-1]] == [0, 2]
    assert isinstance(items[-1], SourceError) and items[-1].reason == "stream lost after 3 reconnect attempts"
    assert len(factory.made) == 4 and len(reconnect_logs(caplog)) == 3


def test_stream_that_opens_but_never_delivers_says_so():
    factory = Factory(FakeCapture(0))  # opens, then every read fails
    items = list(iter_frames(Input("stream", "http://cam/x"), reconnect=2, reconnect_delay=0, capture_factory=factory))
    assert items == [SourceError("http://cam/x", "stream opened but delivered no frames after 2 reconnect attempts")]


def test_ffmpeg_prints_nothing_of_its_own_for_a_missing_camera_or_stream():
    """maskwatch gives one line per failed source; FFmpeg's own log lines (through PyAV) stay off."""
    import subprocess
    import sys

    code = (
        "from maskwatch.detect.sources import Input, iter_frames\n"
        "print([str(e) for e in iter_frames(Input('webcam', '97'))])\n"
        "print([str(e) for e in iter_frames(Input('stream', 'rtsp://127.0.0.1:9/x'), reconnect=0)])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    assert "cannot open camera 97" in done.stdout and "cannot connect to stream" in done.stdout


def test_av_capture_reads_a_real_file_and_refuses_a_broken_one(tmp_path):
    """The real reader: frame count and rate from the container, RGB frames; garbage is refused at open."""
    from maskwatch.detect.sources import AvCapture
    from maskwatch.detect.video import VideoWriter

    with VideoWriter(tmp_path / "red.mp4", 12) as writer:
        for _ in range(6):
            writer.write(np.full((32, 48, 3), RED, np.uint8))
    cap = AvCapture(str(tmp_path / "red.mp4"))
    assert cap.isOpened() and cap.get(PROP_FPS) == 12.0 and cap.get(PROP_FRAME_COUNT) == 6.0
    ok, frame = cap.read()
    assert ok and frame.shape == (32, 48, 3) and frame[16, 24, 0] > 200 and frame[16, 24, 2] < 60
    assert cap.grab() and sum(cap.read()[0] for _ in range(10)) == 4  # 6 frames in all
    cap.release()
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 50)
    bad = AvCapture(str(tmp_path / "bad.mp4"))
    assert not bad.isOpened() and bad.error


def test_stream_of_known_length_ends_without_reconnecting():
    factory = Factory(FakeCapture(5, count=5))
    frames = frames_of(iter_frames(Input("stream", "https://x/clip.mp4"), reconnect_delay=0, capture_factory=factory))
    assert len(frames) == 5 and len(factory.made) == 1


def test_stream_that_cannot_be_opened():
    factory = Factory(FakeCapture(opened=False))
    (item,) = iter_frames(Input("stream", "rtsp://u:pw@cam/live"), reconnect_delay=0, capture_factory=factory)
    assert item == SourceError("rtsp://u:***@cam/live", "cannot connect to stream")


def test_closing_the_iterator_releases_the_capture():
    factory = Factory(FakeCapture(None))
    frames = iter_frames(Input("stream", "rtsp://cam"), capture_factory=factory)
    assert next(frames).index == 0
    frames.close()
    assert factory.made[0].released


def test_video_file_skips_a_bad_frame_and_stops_after_many(caplog):
    caplog.set_level(logging.WARNING, logger="maskwatch.detect.sources")
    factory = Factory(FakeCapture(10, count=10, fail_reads={4, 5}))
    frames = frames_of(iter_frames(Input("video", "x.mp4"), capture_factory=factory))
    assert [f.index for f in frames] == list(range(10))
    assert [int(f.image[0, 0, 1]) for f in frames] == list(range(10))
    assert any("skipped 2 unreadable" in r.getMessage() for r in caplog.records)

    caplog.clear()
    factory = Factory(FakeCapture(10, count=10, fail_reads=set(range(4, 40))))
    frames = frames_of(iter_frames(Input("video", "x.mp4"), capture_factory=factory))
    assert len(frames) == 4 and factory.made[0].reads == 4 + 1 + sources.MAX_FILE_FAILURES
    assert any("stopped at frame 4 of 10" in r.getMessage() for r in caplog.records)

    (item,) = iter_frames(Input("video", "x.mp4"), capture_factory=Factory(FakeCapture(0, count=10)))
    assert item == SourceError("x.mp4", "no frame could be decoded")


def test_webcam(monkeypatch):
    monkeypatch.setattr(sources, "CAMERA_RETRY_DELAY", 0)
    factory = Factory(FakeCapture(3, fail_reads={1}))
    items = list(iter_frames(Input("webcam", "0"), capture_factory=factory))
    assert [f.index for f in items[:-1]] == [0, 1, 2] and items[-1].source == "webcam:0"
    assert items[-1].reason == "camera stopped delivering frames"
    (item,) = iter_frames(Input("webcam", "1"), capture_factory=Factory(FakeCapture(opened=False)))
    assert item == SourceError("webcam:1", "cannot open camera 1")


class StillCapture(FakeCapture):
    """A capture whose one frame is the given array (RGB or RGBA, any depth)."""

    def __init__(self, frame: np.ndarray) -> None:
        super().__init__(1, count=1)
        self.frame = frame

    def read(self):
        ok, _ = super().read()
        return (True, self.frame) if ok else (False, None)


def test_frames_follow_the_same_conversion_rules_as_photos(tmp_path):
    """A 16-bit RGBA frame is scaled and its alpha composited onto white, exactly as the same picture as a PNG."""
    rgba16 = np.zeros((2, 3, 4), np.uint16)
    rgba16[..., 0], rgba16[..., 1], rgba16[..., 2] = 200 * 257, 100 * 257, 0  # R, G, B
    rgba16[..., 3] = [[65535, 128 * 257, 0], [65535, 128 * 257, 0]]  # opaque, half, transparent
    (frame,) = frames_of(iter_frames(Input("video", "x.mp4"), capture_factory=Factory(StillCapture(rgba16))))
    assert frame.image.dtype == np.uint8 and frame.image.shape == (2, 3, 3)
    assert frame.image[0].tolist() == [[200, 100, 0], [227, 177, 127], [255, 255, 255]]
    Image.fromarray((rgba16 >> 8).astype(np.uint8), "RGBA").save(tmp_path / "same.png")
    (photo,) = frames_of(iter_frames(Input("image", str(tmp_path / "same.png"))))
    assert np.array_equal(photo.image, frame.image)
