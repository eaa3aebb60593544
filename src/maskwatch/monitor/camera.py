"""One camera, isolated: a reader thread and a worker thread joined by a one-frame mailbox.

The reader opens the camera with ``detect.sources`` (``iter_frames`` over an ``AvCapture``: RTSP over TCP, HTTP
MJPEG or anything PyAV opens, video files played at their own pace, webcams) and keeps only the newest frame: when
the worker has not taken the previous one yet, that one is dropped (counted). Frames above the camera's ``fps`` cap
are skipped (counted apart). A lost connection — with PyAV a killed camera server just ends the stream, and a frozen
one ends it after ``timeout`` seconds without a packet — is reopened with exponential backoff (``backoff_start``
doubling to ``backoff_max``); a video file ends (``stopped``) or starts again (``loop``).

The worker runs ``detect``'s own video pipeline (``TrackedPipeline``: detect, track, classify_every) on each frame
it takes, turns ended tracks into person events (``people.PersonTracker``) and hands them to ``on_people``. Each
new connection gets a fresh tracker (the tracks of the previous one end there). Nothing a camera does — failing to
open, sending garbage, a pipeline error — leaves its own two threads.

Status: ``connecting`` → ``live`` ⇄ ``reconnecting``; ``stopped`` (stopped, or a file ended); ``failed`` (a
file that cannot be read, or the pipeline broke: ``error`` says why, in one line).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maskwatch.detect.annotate import Annotator
from maskwatch.detect.faces import Faces
from maskwatch.detect.pipeline import Pipeline
from maskwatch.detect.sources import AvCapture, Capture, Input, SourceError, _default_capture, iter_frames
from maskwatch.detect.tracking import TrackedPipeline
from maskwatch.monitor.config import CameraConfig, MonitorSettings
from maskwatch.monitor.people import PersonEvent, PersonTracker, blur_faces, encode_jpeg

logger = logging.getLogger(__name__)

STATUSES = ("connecting", "live", "reconnecting", "stopped", "failed")
FPS_WINDOW = 5.0  # seconds over which the measured fps is averaged
LOST_SECONDS = 1.0
# FFmpeg probes a stream for 5 s by default before the first frame; cameras announce their codec at once (RTSP: in
# the SDP), so 1 s is enough and a camera is live (and back after a reconnect) 4 s sooner
ANALYZE_MICROSECONDS = 1_000_000  # FaceTracker's default lost buffer: a track unseen this long has ended

CaptureOpener = Callable[[Input, float], Capture]


def open_capture(inp: Input, timeout: float) -> Capture:
    """``detect.sources``' own capture for ``inp``, with the camera's ``timeout`` for network streams."""
    if inp.kind == "stream":
        scheme = inp.location.split(":", 1)[0].lower()
        options = {"analyzeduration": str(ANALYZE_MICROSECONDS)}
        if scheme in ("rtsp", "rtsps"):
            options["rtsp_transport"] = "tcp"
        return AvCapture(inp.location, options=options, timeout=timeout)
    return _default_capture(inp)


@dataclass
class _Item:
    connection: int
    ts: float  # Unix seconds when it was read
    image: np.ndarray


class LatestFrame:
    """A one-frame mailbox: ``put`` replaces an untaken frame (counted in ``dropped``); ``take`` waits."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: _Item | None = None
        self.dropped = 0

    def put(self, item: _Item) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def take(self, timeout: float) -> _Item | None:
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None, timeout)
            item, self._item = self._item, None
            return item

    def empty(self) -> bool:
        with self._cond:
            return self._item is None


def camera_pipeline(base: Pipeline, cfg: CameraConfig, width: int, height: int, rate: float) -> TrackedPipeline:
    """``detect``'s video pipeline for this camera: the server's detector (its loaded model shared) at the
    camera's video size, threshold and min_face; the server's classifier; a tracker at ``rate`` frames/s."""
    det: Any = base.detector
    resized = getattr(det, "resized", None)
    if resized is not None:
        det = resized(cfg.detector.video_size_for(width, height))
        for attr, value in (
            ("threshold", cfg.detector.threshold),
            ("tiles", cfg.detector.tiles),
            ("nms_iou", cfg.detector.nms_iou),
            ("box_fit", cfg.detector.box_fit),
            ("min_face", float(cfg.min_face)),
        ):
            if hasattr(det, attr):
                setattr(det, attr, value)
    pipeline = Pipeline(det, base.classifier, margin=cfg.detector.margin)
    return TrackedPipeline(pipeline, rate, classify_every=cfg.classify_every, lost_seconds=LOST_SECONDS)


def _lost_frames(tracked: TrackedPipeline, rate: float) -> int:
    bytetrack = getattr(tracked.tracker, "_bytetrack", None)  # the tracker's own buffer where it shows it
    return int(getattr(bytetrack, "lost_frames", max(1, round(LOST_SECONDS * rate))))


class Camera:
    """``start()``, ``status()``, ``preview_jpeg()``, ``stop()``. ``on_people`` gets each batch of closed person
    events from the worker thread (the manager commits them, then announces them)."""

    def __init__(
        self,
        config: CameraConfig,
        pipeline: Pipeline,
        on_people: Callable[[list[PersonEvent]], None],
        settings: MonitorSettings | None = None,
        *,
        opener: CaptureOpener | None = None,
    ) -> None:
        self.config = config
        self.base = pipeline
        self.on_people = on_people
        self.settings = settings or MonitorSettings()
        self.opener = opener or open_capture
        self.slot = LatestFrame()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state = "stopped" if not config.enabled else "connecting"
        self.error: str | None = None
        self.connection = 0
        self.connects = 0  # connections that delivered a frame
        self.reconnects = 0
        self.read = 0  # frames read from the source
        self.skipped = 0  # frames over the fps cap
        self.analysed = 0
        self.people = 0
        self.last_frame: float | None = None
        self.live_since: float | None = None
        self._times: collections.deque[float] = collections.deque()
        self._preview: tuple[np.ndarray, Faces] | None = None
        self._preview_at = 0.0
        self._ended = False  # the reader finished for good (file end, failure, stop)
        self._threads: list[threading.Thread] = []
        self._open_error: str | None = None
        self.annotator = Annotator(pipeline.labels)

    # ----------------------------------------------------------------------------------------------- control
    def start(self) -> None:
        if self._threads or not self.config.enabled:
            return
        name = self.config.name
        self._threads = [
            threading.Thread(target=self._guard(self._read_loop), name=f"camera-{name}-reader", daemon=True),
            threading.Thread(target=self._guard(self._work_loop), name=f"camera-{name}-worker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def request_stop(self) -> None:
        """Ask both threads to end, without waiting (``stop`` waits)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop both threads; True when they ended within ``timeout`` (a read blocked on a frozen camera ends
        within the camera's ``timeout`` by itself: the threads are daemons and hold nothing else)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = any(t.is_alive() for t in self._threads)
        with self._lock:
            if self._state != "failed":
                self._state = "stopped"
        return not alive

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _guard(self, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except Exception as exc:  # a broken camera fails alone, it never stops the others
                logger.exception("camera %s: %s stopped", self.config.name, loop.__name__)
                self._fail(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"[:300])
                self._stop.set()

        return run

    def _set(self, state: str, error: str | None = None) -> None:
        with self._lock:
            if self._state == "failed":
                return
            if state == "live" and self._state != "live":
                self.live_since = time.time()
            self._state = state
            if error is not None or state == "live":
                self.error = error

    def _fail(self, error: str) -> None:
        with self._lock:
            self._state, self.error = "failed", error

    # ------------------------------------------------------------------------------------------------ reader
    def _open(self, inp: Input) -> Capture:
        cap = self.opener(inp, self.config.timeout)
        if not cap.isOpened():
            self._open_error = getattr(cap, "error", None)
        return cap

    def _read_loop(self) -> None:
        cfg, inp = self.config, self.config.input
        delay = self.settings.backoff_start
        period = 1.0 / cfg.fps
        try:
            while not self._stop.is_set():
                if inp.kind == "video" and not Path(inp.location).is_file():
                    self._fail(f"file does not exist: {inp.location}")
                    return
                self.connection += 1
                self._open_error = None
                got, lost = 0, None
                start = time.monotonic()
                due = 0.0
                frames = iter_frames(inp, reconnect=0, capture_factory=self._open)
                try:
                    for item in frames:
                        if self._stop.is_set():
                            return
                        if isinstance(item, SourceError):
                            lost = item.reason
                            break
                        if got == 0:
                            self.connects += 1
                            delay = self.settings.backoff_start
                            self._set("live")
                        got += 1
                        self.read += 1
                        if inp.kind == "video":  # a file plays at its own pace
                            at = got / (item.fps or 25.0)
                            if self._stop.wait(max(0.0, start + at - time.monotonic())):
                                return
                        else:
                            at = time.monotonic() - start
                        if at + 0.25 * period < due:
                            self.skipped += 1
                            continue
                        due = max(due + period, at - period)
                        self.slot.put(_Item(self.connection, time.time(), item.image))
                finally:
                    frames.close()  # releases the capture (iter_frames' finally), even when stopping
                if self._stop.is_set():
                    return
                if inp.kind == "video" and lost is None and got:
                    if cfg.loop:
                        continue
                    return  # the file ended: the worker finishes its frames, then says "stopped"
                if inp.kind == "video":
                    self._fail(lost or "no frame could be decoded")
                    return
                reason = _lost_reason(lost, self._open_error, got)
                self.reconnects += 1
                self._set("reconnecting", reason)
                logger.info("camera %s: %s; reconnecting in %.1f s", cfg.name, reason, delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.settings.backoff_max)
        finally:
            self._ended = True

    # ------------------------------------------------------------------------------------------------ worker
    def _work_loop(self) -> None:
        cfg = self.config
        tracked: TrackedPipeline | None = None
        people: PersonTracker | None = None
        connection = 0
        try:
            while not self._stop.is_set():
                item = self.slot.take(0.2)
                if item is None:
                    if people is not None and self.connection != connection:  # the connection ended
                        self._emit(people.close_all(time.time(), "lost"))
                        tracked = people = None
                    if self._ended and self.slot.empty():
                        break
                    continue
                if tracked is None or item.connection != connection:
                    if people is not None:
                        self._emit(people.close_all(item.ts, "lost"))
                    height, width = item.image.shape[:2]
                    rate = cfg.fps
                    tracked = camera_pipeline(self.base, cfg, width, height, rate)
                    people = PersonTracker(
                        cfg.name,
                        tracked.tracker,
                        lost_frames=_lost_frames(tracked, rate),
                        max_seconds=self.settings.max_person_seconds,
                        snapshots=self.settings.snapshots,
                    )
                    connection = item.connection
                assert people is not None
                faces = tracked.track(item.image)
                self._count(item, faces)
                self._emit(people.update(item.image, faces, item.ts))
        finally:
            if people is not None:
                self._emit(people.close_all(time.time(), "stopped"))
            if self._ended and not self._stop.is_set():
                self._set("stopped")

    def _count(self, item: _Item, faces: Faces) -> None:
        now = time.monotonic()
        with self._lock:
            self.analysed += 1
            self.last_frame = item.ts
            self._times.append(now)
            while self._times and self._times[0] < now - FPS_WINDOW:
                self._times.popleft()
            if now - self._preview_at >= self.settings.preview_seconds:
                self._preview, self._preview_at = (item.image, faces), now

    def _emit(self, events: list[PersonEvent]) -> None:
        if events:
            self.people += len(events)
            self.on_people(events)

    # ------------------------------------------------------------------------------------------------- views
    def fps(self) -> float:
        with self._lock:
            times = list(self._times)
        if len(times) < 2:
            return 0.0
        span = max(time.monotonic() - times[0], times[-1] - times[0])
        return round((len(times) - 1) / span, 2) if span > 0 else 0.0

    def status(self) -> dict[str, Any]:
        from maskwatch.monitor.store import iso

        with self._lock:
            state, error, last = self._state, self.error, self.last_frame
        if state == "live" and last is not None and time.time() - last > max(5.0, 3 * self.config.timeout):
            state = "reconnecting"  # frames stopped but the read has not timed out yet
        return {
            "name": self.config.name,
            "status": state,
            "fps": self.fps() if state == "live" else 0.0,
            "dropped": self.slot.dropped,
            "skipped": self.skipped,
            "frames": self.analysed,
            "read": self.read,
            "people": self.people,
            "reconnects": self.reconnects,
            "last_frame": iso(last) if last else None,
            "error": error,
            "url": self.config.shown_url,
            "enabled": self.config.enabled,
        }

    def preview_jpeg(self) -> bytes | None:
        """The newest preview frame (renewed every ``preview_seconds``), annotated; faces blurred unless
        snapshots are ``full``."""
        with self._lock:
            preview = self._preview
        if preview is None:
            return None
        image, faces = preview
        if self.settings.snapshots != "full":
            image = blur_faces(image, faces.boxes)
        with contextlib.suppress(ValueError):
            image = self.annotator.draw(image, faces)
        return encode_jpeg(image, 80)


def _lost_reason(lost: str | None, open_error: str | None, got: int) -> str:
    if got == 0:
        detail = f": {open_error}" if open_error else ""
        return f"cannot connect{detail}" if not lost or "connect" in lost else f"{lost}{detail}"
    return "stream ended" if not lost else "stream lost (no frame within the timeout, or the connection closed)"
