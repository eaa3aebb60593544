"""The camera monitor inside the server: ``attach_monitor(app, state, settings)`` (one call at the end of
``create_app``) keeps a ``Monitoring`` in ``app.state.monitoring`` and ties the monitor's start and stop to the
app's lifespan; the routes (``routes/cameras.py``, ``routes/people.py``, in ``ROUTERS``) reach it through
``MonitoringDep``.

The monitor itself is created only when cameras are configured or its store keeps some; without either, the
first ``POST /api/v1/cameras`` creates it. Its store is ``monitor.sqlite`` beside the server's SQLite event log
(unless ``MonitorSettings.db`` names one), its snapshots in ``snapshots/`` beside that; with ``--store
postgresql://...`` its tables are in that database too, the alerts and their deliveries included (the Alerter
works on the monitor's store, so servers sharing the database share one alert log and delivery queue); snapshots
stay beside ``--db``.

With ``ServeSettings.engine == "ray"`` the server joins Ray when the app is built (a cluster that cannot be reached
stops it there, in one line) and the monitor's cameras run as Ray actors (``scale/cameras.RayCameras``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from maskwatch.detect.pipeline import Pipeline
from maskwatch.monitor.alerting import alerting
from maskwatch.monitor.alerts import Alerter
from maskwatch.monitor.camera import CaptureOpener
from maskwatch.monitor.config import MonitorSettings, check_camera_files
from maskwatch.monitor.manager import CameraFactory, Monitor
from maskwatch.monitor.store import MonitorStore, has_cameras
from maskwatch.serve.deps import ServerState
from maskwatch.store.engine import StoreTarget

log = logging.getLogger("maskwatch.serve")


@dataclass
class Monitoring:
    settings: MonitorSettings
    db: Path
    pipeline: Pipeline
    opener: CaptureOpener | None = None
    url: StoreTarget | None = None  # the shared PostgreSQL store; None: the SQLite file db
    camera_factory: CameraFactory | None = None  # None: cameras in this process
    store: MonitorStore | None = None
    monitor: Monitor | None = None
    alerter: Alerter | None = None
    running: bool = False  # inside the app's lifespan: a monitor created now starts at once
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open_store(self) -> MonitorStore | None:
        """The store if it exists (reads never create it)."""
        with self._lock:
            if self.store is None and (self.url or self.db.is_file()):
                self.store = self._open()
            return self.store

    def _open(self) -> MonitorStore:
        return MonitorStore(self.url, self.db.with_name("snapshots")) if self.url else MonitorStore(self.db)

    def ensure(self) -> Monitor:
        """The monitor, created (and started, when the app runs) on first need."""
        with self._lock:
            if self.monitor is None:
                if self.store is None:
                    self.store = self._open()
                self.monitor = Monitor(
                    self.store, self.pipeline, self.settings, opener=self.opener, camera_factory=self.camera_factory
                )
                self.alerter, listener = alerting(self.store, self.settings, self.monitor.config)
                self.monitor.on_person(listener)
                if self.running:
                    self.monitor.start()
            return self.monitor

    def start(self) -> None:
        with self._lock:
            self.running = True
            monitor = self.monitor
        if monitor is not None:
            monitor.start()

    def stop(self) -> None:
        with self._lock:
            self.running = False
            monitor, store, alerter = self.monitor, self.store, self.alerter
        if monitor is not None:
            monitor.stop()
        if alerter is not None:
            alerter.close()  # what is still pending is sent by the next start
        if store is not None:
            store.close()

    def statuses(self) -> list[dict[str, Any]]:
        return self.monitor.statuses() if self.monitor is not None else []


def monitor_db(state: ServerState, settings: MonitorSettings) -> Path:
    events = state.settings.store_target().path or Path(state.settings.db)
    return Path(settings.db) if settings.db else events.with_name("monitor.sqlite")


def monitor_url(state: ServerState, settings: MonitorSettings) -> StoreTarget | None:
    """The PostgreSQL store the monitor shares with the event log; None: its own SQLite file."""
    target = state.settings.store_target()
    return None if settings.db or target.is_sqlite else target


def camera_factory(state: ServerState) -> CameraFactory | None:
    """Where the server's cameras run: None (in this process) or, with ``--engine ray``, Ray actors (joined now)."""
    serve = state.settings
    if serve.engine != "ray":
        return None
    from maskwatch.scale.cameras import RayCameras
    from maskwatch.scale.cluster import connect

    connect(serve.address, None)
    return RayCameras.for_pipeline(state.pipeline, serve.detector, num_cpus=serve.camera_cpus)


def attach_monitor(
    app: FastAPI,
    state: ServerState,
    settings: MonitorSettings | None = None,
    *,
    opener: CaptureOpener | None = None,
    cameras: CameraFactory | None = None,
) -> Monitoring:
    """Add the camera monitor to the app ``create_app`` built (``opener`` replaces how cameras are opened: tests;
    ``cameras`` how they are made, else as ``--engine`` says)."""
    settings = settings or MonitorSettings()
    settings.validate()
    check_camera_files(settings.cameras)
    old = getattr(app.state, "monitoring", None)
    if isinstance(old, Monitoring):  # attached again (tests, a script with its own cameras): the new one replaces it
        if old.running:
            raise RuntimeError("attach_monitor: the app is already running")
        old.stop()
    factory = cameras or camera_factory(state)
    monitoring = Monitoring(
        settings, monitor_db(state, settings), state.pipeline, opener, monitor_url(state, settings), factory
    )
    if settings.cameras or has_cameras(monitoring.url or monitoring.db):
        monitoring.ensure()
    else:
        monitoring.open_store()
    app.state.monitoring = monitoring
    if getattr(app.state, "monitoring_lifespan", False):
        return monitoring

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as value:
            current: Monitoring = a.state.monitoring
            current.start()
            try:
                yield value
            finally:
                current.stop()

    app.router.lifespan_context = lifespan
    app.state.monitoring_lifespan = True
    return monitoring


async def get_monitoring(connection: HTTPConnection) -> Monitoring:
    monitoring = getattr(connection.app.state, "monitoring", None)
    if monitoring is None:  # the app was built without attach_monitor: no cameras, no people
        from fastapi import HTTPException

        raise HTTPException(404, "camera monitoring is not part of this server")
    return monitoring


MonitoringDep = Annotated[Monitoring, Depends(get_monitoring)]
