"""Where frames come from for ``maskwatch detect SOURCE``: images, videos, folders, globs, webcams and streams.

Every problem with a source becomes a ``SourceError`` (one line) in the output instead of an exception, so one bad
file or a dropped camera never stops a run over many inputs.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from maskwatch.data.images import (
    IMAGE_EXTENSIONS,
    LOCAL_MAX_PIXELS,
    OPTIONAL_IMAGE_FORMATS,
    BadImageError,
    decode_rgb,
    format_support,
    open_rgb,
    over_budget,
    to_rgb8,
)
from maskwatch.detect.walk import Walk, expand_manifest, is_manifest, not_a_file, read_url, url_scheme
from maskwatch.errors import MaskwatchError
from maskwatch.progress import printable

logger = logging.getLogger(__name__)

# .gif stays an image (first frame only): it is in IMAGE_EXTENSIONS.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".m2ts", ".mts", ".3gp"}
)
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp"})
KINDS = ("image", "video", "webcam", "stream")

MAX_FILE_FAILURES = 5  # consecutive failed reads tolerated inside a video file before it counts as ended
MAX_CAMERA_FAILURES = 10  # consecutive failed reads from a webcam before giving up
CAMERA_RETRY_DELAY = 0.05  # seconds between those webcam reads
STREAM_TIMEOUT = 10.0  # seconds to open a network stream, and to wait for its next packet
PROP_FPS, PROP_FRAME_COUNT = "fps", "frames"  # what Capture.get is asked

_GLOB_CHARS = re.compile(r"[*?\[]")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")


@dataclass
class Frame:
    source: str  # Input.name(): the path as given, the URL (password hidden) or "webcam:0"
    index: int | None  # 0-based count of decoded frames (skipped ones included); None for a still image
    image: np.ndarray  # H x W x 3, uint8, RGB, C-contiguous
    fps: float | None = None  # the source's nominal rate; None for images or when unknown
    frames: int | None = None  # the source's frame count, where it knows one (video files)


@dataclass
class SourceError:
    source: str
    reason: str  # one line, e.g. "does not exist", "cannot decode image: truncated image"

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass
class Input:
    kind: str  # "image" | "video" | "webcam" | "stream"
    location: str  # path, URL, or webcam index as a string

    def name(self) -> str:
        """What goes into ``Frame.source``; a password in a stream URL is replaced by ``***``."""
        if self.kind == "webcam":
            return f"webcam:{self.location}"
        if self.kind == "stream":
            return _hide_password(self.location)
        return self.location


class Capture(Protocol):
    """An opened video, stream or camera, read frame by frame (``AvCapture``; tests pass fakes). ``read`` gives
    (True, an RGB or RGBA array of any depth) or (False, None); ``grab`` (used when present) skips a frame without
    converting it; ``get(PROP_FPS | PROP_FRAME_COUNT)`` answers 0 when unknown. The names are OpenCV's
    ``VideoCapture``'s, whose part this is."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, Any]: ...
    def get(self, prop: str) -> float: ...
    def release(self) -> None: ...


class AvCapture:
    """A ``Capture`` on PyAV (FFmpeg): files, network streams (RTSP over TCP; ``timeout`` seconds to open and between
    packets, so a frozen camera ends the read instead of blocking it for ever) and webcams (``format`` v4l2 or
    avfoundation). A packet that does not decode is one failed ``read``; the next read goes on after it."""

    def __init__(
        self,
        url: str,
        *,
        format: str | None = None,
        options: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        import av

        self._av = av
        self.container: Any = None
        self.error: str | None = None  # why it did not open (PyAV's words), or why it stopped (the budget)
        self.budget_exceeded = False
        try:
            self.container = av.open(url, format=format, options=options or {}, timeout=timeout)
            self.stream = self.container.streams.video[0]
        except IndexError:
            self.error = "no video stream in it"
            self.release()
            return
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.error = av_error_text(exc)
            self.release()
            return
        width, height = self.stream.codec_context.width, self.stream.codec_context.height
        self.error = over_budget(width, height, "RGB", "frames of ") if width and height else None
        if self.error:  # refused before a frame is decoded
            self.budget_exceeded = True
            self.release()
            return
        self.stream.thread_type = "AUTO"  # frame threads: decoding keeps up with the camera
        self._frames = self._decode()

    def _decode(self) -> Iterator[Any]:
        for packet in self.container.demux(self.stream):
            try:
                frames = packet.decode()
            except self._av.FFmpegError:
                yield None  # a broken packet: one failed read
                continue
            yield from frames

    def isOpened(self) -> bool:
        return self.container is not None

    def _next(self) -> Any:
        if self.container is None:
            return None
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except (self._av.FFmpegError, OSError) as exc:  # a lost connection, a read timeout
            logger.debug("read failed: %s", exc)
            self.release()
            return None

    def read(self) -> tuple[bool, np.ndarray | None]:
        frame = self._next()
        if frame is None:
            return False, None
        refused = over_budget(frame.width, frame.height, "RGB", "frames of ")
        if refused:  # a stream whose frames grow past the budget after it opened: not converted, it ends here
            self.error, self.budget_exceeded = refused, True
            self.release()
            return False, None
        return True, frame.to_ndarray(format="rgb24")

    def grab(self) -> bool:
        return self._next() is not None

    def get(self, prop: str) -> float:
        if self.container is None:
            return 0.0
        if prop == PROP_FPS:
            rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
            return float(rate) if rate else 0.0
        if prop == PROP_FRAME_COUNT:
            if self.stream.frames:
                return float(self.stream.frames)
            # fragmented MP4 (what maskwatch writes) and many containers give no count: duration x rate
            seconds = self.stream.duration * self.stream.time_base if self.stream.duration else None
            if seconds is None and self.container.duration:
                seconds = self.container.duration / 1_000_000  # av.time_base
            return float(round(seconds * self.get(PROP_FPS))) if seconds else 0.0
        return 0.0

    def release(self) -> None:
        if self.container is not None:
            container, self.container = self.container, None
            container.close()


CaptureFactory = Callable[[Input], Capture]


def av_error_text(exc: BaseException) -> str:
    """PyAV's (FFmpeg's) reason in words, without the errno and the URL: "HTTP Error 404 Not Found", "Invalid data
    found when processing input", "Connection refused"."""
    text = getattr(exc, "strerror", None) or (str(exc).splitlines() or [""])[0] or type(exc).__name__
    return str(text).strip()


# ----------------------------------------------------------------------------------------------------- resolving


def unique_inputs(inputs: Iterable[Input]) -> list[Input]:
    """``inputs`` without repeats, in first-seen order: a photo named by a folder, by itself and by a glob is
    processed (and counted in the summary) once."""
    seen: set[tuple[str, str]] = set()
    unique: list[Input] = []
    for inp in inputs:
        where = os.path.realpath(inp.location) if inp.kind in ("image", "video") else inp.location
        if (inp.kind, where) not in seen:
            seen.add((inp.kind, where))
            unique.append(inp)
    return unique


def resolve_inputs(spec: str, ignored: list[str] | None = None) -> tuple[list[Input], list[SourceError]]:
    """Turn one SOURCE argument into inputs to read, and the reasons some of it cannot be read.

    ``spec`` is an image or video file, a folder (searched recursively, sorted, files that are not images or videos
    by their extension passed over and added to ``ignored``), a glob pattern (same rules as a folder), a webcam
    index ("0") or a stream URL (rtsp, rtmp, http(s), udp, tcp). Every image or video entry of a folder ends as an
    input or an error: links that lead nowhere or in a loop, FIFOs and devices, folders that cannot be listed.
    """
    if not spec.strip():
        return [], [SourceError(spec, "empty source")]
    url = _URL.match(spec)
    if url:
        scheme = url.group(1).lower()
        if scheme in STREAM_SCHEMES:
            return [Input("stream", spec)], []
        return [], [SourceError(_hide_password(spec), f"unsupported URL scheme {scheme}://")]
    if re.fullmatch(r"[0-9]+", spec):
        return [Input("webcam", str(int(spec)))], []

    spec = os.path.expanduser(spec)  # a quoted "~/photos/*.jpg" reaches us unexpanded
    path = Path(spec)
    if path.is_file() and is_manifest(spec):
        return expand_manifest(spec, lambda e: resolve_inputs(e, ignored), lambda u: Input("image", u), SourceError)
    if path.is_file():
        kind = _kind_of(path)
        if kind is None:
            return [], [SourceError(spec, f"not an image or video ({_extension_text(path)})")]
        unsupported = format_support(path.suffix)
        if unsupported:
            return [], [SourceError(spec, unsupported)]
        return [Input(kind, spec)], []
    if path.is_dir():
        found = _walked(Walk(_is_media, format_support, ignored).folder(spec))
        if not found[0] and not found[1]:
            return [], [SourceError(spec, "no images or videos in this folder")]
        return found
    if os.path.lexists(spec):
        return [], [SourceError(spec, not_a_file(spec))]
    if _GLOB_CHARS.search(spec):
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            return [], [SourceError(spec, "pattern matches nothing")]
        walk = Walk(_is_media, format_support, ignored)
        for match in matches:
            walk.entry(match)
        found = _walked(walk)
        if not found[0] and not found[1]:
            return [], [SourceError(spec, f"pattern matches {len(matches)} path(s) but no image or video")]
        return found
    return [], [SourceError(spec, "does not exist")]


def _is_media(path: str) -> bool:
    return _kind_of(Path(path)) is not None


def _walked(walk: Walk) -> tuple[list[Input], list[SourceError]]:
    inputs = [Input(_kind_of(Path(p)) or "image", p) for p in sorted(walk.files)]
    return inputs, [SourceError(p, reason) for p, reason in walk.problems]


def _kind_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS or suffix in OPTIONAL_IMAGE_FORMATS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return None


def _extension_text(path: Path) -> str:
    return f"unknown extension {path.suffix}" if path.suffix else "no file extension"


def _hide_password(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:  # malformed port and the like: show the URL as given
        return url


# ------------------------------------------------------------------------------------------------------ reading


def iter_frames(
    inp: Input,
    *,
    every: int = 1,
    max_frames: int | None = None,
    reconnect: int = 5,
    reconnect_delay: float = 1.0,
    capture_factory: CaptureFactory | None = None,
) -> Iterator[Frame | SourceError]:
    """Frames of one input: every ``every``-th decoded frame, at most ``max_frames`` of them.

    Problems are yielded as a ``SourceError`` (then the iteration ends) rather than raised. A lost stream is
    reopened up to ``reconnect`` times in a row, ``reconnect_delay`` seconds apart; frame indices keep counting.
    ``capture_factory`` replaces ``AvCapture`` (tests).
    """
    if every < 1:
        raise MaskwatchError(f"every must be at least 1 (got {every})")
    if max_frames is not None and max_frames < 0:
        raise MaskwatchError(f"max_frames must not be negative (got {max_frames})")
    if reconnect < 0:
        raise MaskwatchError(f"reconnect must not be negative (got {reconnect})")
    if inp.kind not in KINDS:
        raise ValueError(f"unknown input kind {inp.kind!r}")
    if max_frames == 0:
        return iter(())
    if inp.kind == "image":
        return iter((_read_image(inp),))
    return _iter_capture(
        inp,
        every=every,
        max_frames=max_frames,
        reconnect=reconnect,
        reconnect_delay=max(0.0, reconnect_delay),
        factory=capture_factory or _default_capture,
    )


def _read_image(inp: Input) -> Frame | SourceError:
    try:
        if url_scheme(inp.location):  # a manifest's URL
            image = decode_rgb(read_url(inp.location), inp.name(), max_pixels=LOCAL_MAX_PIXELS)
        else:
            image = open_rgb(inp.location)
    except OSError as exc:
        return SourceError(inp.name(), f"cannot read ({exc})")
    except BadImageError as exc:
        return SourceError(inp.name(), f"cannot decode image: {exc.reason}")
    return Frame(inp.name(), None, np.ascontiguousarray(np.array(image, dtype=np.uint8)))


def _default_capture(inp: Input) -> Capture:
    if inp.kind == "webcam":
        if sys.platform == "darwin":
            return AvCapture(inp.location, format="avfoundation")
        return AvCapture(f"/dev/video{int(inp.location)}", format="v4l2")
    if inp.kind == "stream":
        scheme = inp.location.split(":", 1)[0].lower()
        options = {"rtsp_transport": "tcp"} if scheme in ("rtsp", "rtsps") else {}
        return AvCapture(inp.location, options=options, timeout=STREAM_TIMEOUT)
    return AvCapture(inp.location)


def _open(factory: CaptureFactory, inp: Input) -> tuple[Capture | None, str | None]:
    """The opened capture, or None and why not (PyAV's words, where the capture kept them)."""
    try:
        cap = factory(inp)
    except (OSError, ValueError) as exc:
        logger.debug("%s: opening failed: %s", printable(inp.name()), exc)
        return None, av_error_text(exc)
    if cap.isOpened():
        return cap, None
    error = getattr(cap, "error", None)
    logger.debug("%s: opening failed: %s", printable(inp.name()), error)
    cap.release()
    return None, error


def _open_failure(inp: Input, error: str | None = None) -> str:
    """The one line for an input that did not open; ``error`` (PyAV's reason) says what happened."""
    if error and "decoding budget" in error:
        return error
    detail = f" ({error})" if error else ""
    if inp.kind == "webcam":
        return f"cannot open camera {inp.location}{detail}"
    if inp.kind == "stream":
        low = (error or "").lower()
        if "http error" in low or low.startswith("server returned"):
            return f"stream answered {error}"  # the server was reached: a 404, a 401, ...
        if "invalid data" in low or "no video stream" in low:
            return f"not a video stream{detail}"
        return f"cannot connect to stream{detail}"
    if not os.path.lexists(inp.location):
        return "does not exist"
    if error:
        return f"cannot open video{detail}"
    return "cannot open video (corrupt file or unsupported format)"


def _iter_capture(
    inp: Input,
    *,
    every: int,
    max_frames: int | None,
    reconnect: int,
    reconnect_delay: float,
    factory: CaptureFactory,
) -> Iterator[Frame | SourceError]:
    name = inp.name()
    shown_name = printable(name)  # log lines: a name's control characters escaped
    cap, error = _open(factory, inp)
    if cap is None:
        yield SourceError(name, _open_failure(inp, error))
        return
    try:
        fps = _fps(cap)
        total = _frame_count(cap)  # 0 = unknown (live sources)
        index = 0  # decoded frames so far, over all connections
        on_connection = 0  # decoded frames since the last (re)connect
        yielded = 0
        failures = 0  # consecutive failed reads
        attempts = 0  # reconnect attempts since the last good frame
        while max_frames is None or yielded < max_frames:
            wanted = index % every == 0
            ok, image = _read(cap, wanted)
            if ok:
                if failures and inp.kind == "video":
                    logger.warning("%s: skipped %d unreadable frame(s) before frame %d", shown_name, failures, index)
                failures = attempts = 0
                if wanted:
                    yield Frame(name, index, image, fps, total or None)
                    yielded += 1
                index += 1
                on_connection += 1
                continue
            failures += 1
            if getattr(cap, "budget_exceeded", False):
                yield SourceError(name, getattr(cap, "error", None) or "frames over the decoding budget")
                return
            if inp.kind == "video":
                if index < total and failures <= MAX_FILE_FAILURES:
                    logger.debug("%s: cannot read frame %d, trying the next", shown_name, index)
                    continue
                if index == 0:
                    yield SourceError(name, "no frame could be decoded")
                elif index < total:
                    logger.warning(
                        "%s: stopped at frame %d of %d: the rest cannot be decoded", shown_name, index, total
                    )
                return
            if inp.kind == "webcam":
                if failures <= MAX_CAMERA_FAILURES:
                    time.sleep(CAMERA_RETRY_DELAY)
                    continue
                reason = "camera stopped delivering frames" if index else "camera opened but delivered no frames"
                yield SourceError(name, reason)
                return
            # A stream: one with a known length (a file served over http) ends there; a live one is reopened.
            if total > 0 and on_connection >= total - 1:
                return
            cap.release()
            cap = None
            while cap is None:
                if attempts >= reconnect:
                    lost = "stream lost" if index else "stream opened but delivered no frames"
                    yield SourceError(name, f"{lost} after {attempts} reconnect attempts")
                    return
                attempts += 1
                logger.warning("%s: stream lost, reconnecting (attempt %d of %d)", shown_name, attempts, reconnect)
                if reconnect_delay:
                    time.sleep(reconnect_delay)
                cap, error = _open(factory, inp)
                if error and "decoding budget" in error:
                    yield SourceError(name, error)
                    return
            fps = _fps(cap) or fps
            total = _frame_count(cap)
            on_connection = failures = 0
    finally:
        if cap is not None:
            cap.release()


def _read(cap: Capture, wanted: bool) -> tuple[bool, np.ndarray | None]:
    """One frame; a frame that is not wanted is only grabbed (no colour conversion) where the capture can."""
    try:
        if not wanted and hasattr(cap, "grab"):
            return bool(cap.grab()), None
        ok, frame = cap.read()
    except OSError as exc:
        logger.debug("read failed: %s", exc)
        return False, None
    if not ok or frame is None:
        return False, None
    return True, to_rgb8(np.asarray(frame)) if wanted else None


def _fps(cap: Capture) -> float | None:
    value = float(cap.get(PROP_FPS))
    return value if math.isfinite(value) and 0 < value <= 1000 else None


def _frame_count(cap: Capture) -> int:
    value = float(cap.get(PROP_FRAME_COUNT))
    return int(value) if math.isfinite(value) and value > 0 else 0
