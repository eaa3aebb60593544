"""Writing annotated video that browsers play (H.264 in fragmented MP4), and reading a video's facts back."""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

from maskwatch.data.images import resize_rgb
from maskwatch.errors import MaskwatchError

logger = logging.getLogger(__name__)

DEFAULT_FPS = 25
# Fragmented MP4: the header comes first and every keyframe starts a self-contained fragment, so the file written
# so far plays even if the process dies. flush_packets pushes each fragment to disk at once; without it FFmpeg keeps
# up to 32 KiB buffered, and a killed process could leave a file without even its header.
_MUXER_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}


def frame_rate(fps: float | None) -> Fraction:
    """``fps`` as an exact rate (29.97002997 -> 30000/1001); None, non-finite or <= 0 gives 25."""
    if fps is None or not math.isfinite(fps) or fps <= 0:
        return Fraction(DEFAULT_FPS)
    rate = Fraction(fps).limit_denominator(1001)
    return rate if rate > 0 else Fraction(DEFAULT_FPS)


class VideoWriter:
    """H.264 (libx264, yuv420p) in fragmented MP4, written straight to its final path with PyAV.

    Frames are RGB uint8 H x W x 3. The size comes from the first frame (odd sides padded to even, as yuv420p
    needs); later frames of another size are resized to it. A keyframe, and so a new fragment, starts every
    ``keyframe_interval`` seconds: that is about the most a killed process loses. No frame written, no file.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | None,
        *,
        crf: int = 23,
        preset: str = "veryfast",
        keyframe_interval: float = 2.0,
    ) -> None:
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0..51 (got {crf})")
        if not keyframe_interval > 0:
            raise ValueError(f"keyframe_interval must be positive (got {keyframe_interval})")
        self.path = Path(path)
        self.rate = frame_rate(fps)
        self.crf = crf
        self.preset = preset
        self.gop = max(1, round(keyframe_interval * float(self.rate)))
        self._size: tuple[int, int] | None = None  # (width, height) of the first frame
        self._container: Any = None
        self._stream: Any = None
        self._frames = 0
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def frames_written(self) -> int:
        return self._frames

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) as stored: the first frame's size rounded up to even; None before the first frame."""
        if self._size is None:
            return None
        return _even(self._size[0]), _even(self._size[1])

    def write(self, frame: np.ndarray) -> None:
        if self._closed:
            raise RuntimeError(f"{self.path}: write() after close()")
        image = _as_rgb(frame)
        height, width = image.shape[:2]
        if self._size is None:
            self._open(width, height)
        assert self._size is not None
        if (width, height) != self._size:
            image = resize_rgb(image, self._size)
        image = _pad_even(image)
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        video_frame.pts = self._frames
        video_frame.time_base = 1 / self.rate
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self._frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            logger.debug("%s: no frames written, no file created", self.path)
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open(self, width: int, height: int) -> None:
        try:
            container = av.open(str(self.path), mode="w", format="mp4", options=dict(_MUXER_OPTIONS))
        except (av.error.FFmpegError, OSError) as exc:
            raise MaskwatchError(f"{self.path}: cannot write video ({exc})") from None
        try:
            stream = container.add_stream("libx264", rate=self.rate)
            stream.width, stream.height = _even(width), _even(height)
            stream.pix_fmt = "yuv420p"
            stream.codec_context.gop_size = self.gop
            stream.options = {"crf": str(self.crf), "preset": self.preset}
        except BaseException:
            container.close()
            raise
        self._container, self._stream, self._size = container, stream, (width, height)


def read_video_info(path: str | Path) -> dict[str, Any]:
    """{"frames", "fps", "width", "height", "codec"} of a video's first video stream, frames counted by decoding.

    A file that breaks off part way counts the frames decoded before the break.
    """
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MaskwatchError(f"{path}: cannot read video ({exc})") from None
    with container:
        if not container.streams.video:
            raise MaskwatchError(f"{path}: no video stream")
        stream = container.streams.video[0]
        frames = 0
        width, height = stream.codec_context.width, stream.codec_context.height
        try:
            for frame in container.decode(stream):
                frames += 1
                width, height = frame.width, frame.height
        except av.error.FFmpegError as exc:
            logger.warning("%s: decoding stopped after %d frames (%s)", path, frames, exc)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return {
            "frames": frames,
            "fps": float(rate) if rate else 0.0,
            "width": int(width),
            "height": int(height),
            "codec": stream.codec_context.name,
        }


def _even(n: int) -> int:
    return n + (n % 2)


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    image = np.asarray(frame)
    if image.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (got {image.dtype})")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"frames must be H x W x 3 RGB (got shape {image.shape})")
    return image[:, :, :3]


def _pad_even(image: np.ndarray) -> np.ndarray:
    """Repeat the last row/column where the height/width is odd (yuv420p needs even sizes)."""
    height, width = image.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return image
    return np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
