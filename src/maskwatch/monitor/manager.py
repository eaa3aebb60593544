"""``Monitor``: the cameras of one server. It starts the configured ones and those the store kept, adds, changes
and removes cameras at run time (each change persisted in the store first), reports their statuses and previews,
commits every person event to the store and only then announces it to the ``on_person`` listeners (the alert
rules hook in there), sweeps old events by the retention, and stops cleanly.

Each camera is made by the ``camera_factory``: by default a ``camera.Camera`` in this process (its two threads and
the server's pipeline); ``scale/cameras.py`` gives one whose camera runs in a Ray actor. The manager sees only the
``CameraHandle`` methods, so the API and the dashboard do not know where a camera runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from maskwatch.detect.pipeline import Pipeline
from maskwatch.errors import MaskwatchError
from maskwatch.monitor.camera import Camera, CaptureOpener
from maskwatch.monitor.config import CameraConfig, MonitorSettings
from maskwatch.monitor.people import PersonEvent
from maskwatch.monitor.store import MonitorStore

logger = logging.getLogger(__name__)

PersonListener = Callable[[PersonEvent], None]
PeopleSink = Callable[[list[PersonEvent]], None]


class CameraHandle(Protocol):
    """What the manager needs of a camera (``camera.Camera`` has it, and so has ``scale.cameras.RayCamera``)."""

    config: CameraConfig

    def start(self) -> None: ...
    def request_stop(self) -> None: ...
    def stop(self, timeout: float = 5.0) -> bool: ...
    def status(self) -> dict[str, Any]: ...
    def preview_jpeg(self) -> bytes | None: ...


# (config, the manager's commit callback, settings) -> a camera, not started yet
CameraFactory = Callable[[CameraConfig, PeopleSink, MonitorSettings], CameraHandle]


class CameraExists(MaskwatchError):
    pass


class NoSuchCamera(MaskwatchError):
    pass


class Monitor:
    def __init__(
        self,
        store: MonitorStore,
        pipeline: Pipeline,
        settings: MonitorSettings | None = None,
        *,
        opener: CaptureOpener | None = None,
        camera_factory: CameraFactory | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.settings = settings or MonitorSettings()
        self.settings.validate()
        self.opener = opener
        self.camera_factory = camera_factory or self._local_camera
        self.cameras: dict[str, CameraHandle] = {}
        self._listeners: list[PersonListener] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.started = False

    # ----------------------------------------------------------------------------------------------- control
    def start(self) -> None:
        """Save the configured cameras in the store (a configured camera replaces the kept one of its name),
        then start every kept camera that is enabled, in the order they were added."""
        with self._lock:
            if self.started:
                return
            for cfg in self.settings.cameras:
                self.store.save_camera(cfg)
            for cfg in self.store.cameras():
                self._start_camera(cfg)
            for name, reason in getattr(self.store, "bad_cameras", {}).items():
                logger.warning("kept camera %s skipped: %s", name, reason)
            self.started = True
        self._sweeper = threading.Thread(target=self._sweep_loop, name="monitor-sweeper", daemon=True)
        self._sweeper.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every camera (their open people are committed as they end) and the sweeper."""
        self._stopping.set()
        with self._lock:
            cameras = list(self.cameras.values())
        for cam in cameras:
            cam.request_stop()  # all at once, then wait: stopping N cameras takes one timeout, not N
        for cam in cameras:
            cam.stop(timeout)
        if self._sweeper is not None:
            self._sweeper.join(timeout)

    def on_person(self, callback: PersonListener) -> None:
        """Call ``callback(event)`` for every person event, after it is committed (``event.id`` set). It runs on
        the camera's worker thread: keep it short (queue the slow work). Its exceptions are logged, not raised."""
        self._listeners.append(callback)

    # ----------------------------------------------------------------------------------------------- cameras
    def add(self, cfg: CameraConfig) -> None:
        with self._lock:
            if cfg.name in self.cameras:
                raise CameraExists(f"camera {cfg.name!r} exists already (change it with PUT, or remove it)")
            self.store.save_camera(cfg)
            self._start_camera(cfg)

    def change(self, name: str, updates: dict[str, Any]) -> CameraConfig:
        """Apply ``updates`` (CameraConfig fields) to camera ``name``; it restarts with them."""
        with self._lock:
            old = self._camera(name)
            cfg = old.config.changed(updates)
            self.store.save_camera(cfg)
            self.cameras.pop(name)
        old.stop(2.0)
        with self._lock:
            self._start_camera(cfg)
        return cfg

    def remove(self, name: str) -> None:
        with self._lock:
            cam = self._camera(name)
            self.store.delete_camera(name)
            self.cameras.pop(name)
        cam.stop(2.0)

    def _camera(self, name: str) -> CameraHandle:
        cam = self.cameras.get(name)
        if cam is None:
            raise NoSuchCamera(f"no camera {name!r}")
        return cam

    def _local_camera(self, cfg: CameraConfig, on_people: PeopleSink, settings: MonitorSettings) -> CameraHandle:
        return Camera(cfg, self.pipeline, on_people, settings, opener=self.opener)

    def _start_camera(self, cfg: CameraConfig) -> None:
        cam = self.camera_factory(cfg, self._commit, self.settings)
        self.cameras[cfg.name] = cam
        cam.start()

    def statuses(self) -> list[dict[str, Any]]:
        with self._lock:
            cameras = list(self.cameras.values())
        return [cam.status() for cam in cameras]

    def status(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._camera(name).status()

    def config(self, name: str) -> CameraConfig:
        with self._lock:
            return self._camera(name).config

    def preview(self, name: str) -> bytes | None:
        with self._lock:
            cam = self._camera(name)
        return cam.preview_jpeg()

    # ------------------------------------------------------------------------------------------------ people
    def _commit(self, events: list[PersonEvent]) -> None:
        for event in events:
            self.store.add_person(event)  # committed (durable) before anyone hears of it
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:  # a listener never breaks the camera
                    logger.exception("person listener %r failed", listener)

    def _sweep_loop(self) -> None:
        while True:
            try:
                deleted = self.store.sweep(self.settings.retention_days)
                if deleted:
                    logger.info("retention: deleted %d person events", deleted)
            except Exception:  # the next sweep tries again
                logger.exception("retention sweep failed")
            if self._stopping.wait(self.settings.sweep_seconds):
                return
