"""Cameras as Ray actors (``maskwatch serve --engine ray``): one actor per camera, placed across the cluster's nodes.

The actor (``CameraActor``) runs the monitor's own ``monitor.camera.Camera`` — its reader and worker threads, as in
one server — with a pipeline of its own, loaded once per actor process (the server's classifier file and detector
settings). The server's ``Monitor`` stays the one manager: its camera factory (``RayCameras``) gives it one
``RayCamera`` per camera, a stand-in with the methods of ``Camera`` (start, stop, status, preview_jpeg), so the API
and the dashboard do not change.

Events travel by pull: the actor keeps every closed person event (snapshot included) in a numbered ``Outbox``; the
``RayCamera``'s thread asks for them (a long poll, ``POLL_WAIT``), commits each through the manager (store, then
alert listeners, as for a local camera) and only then acknowledges it (the next poll carries the last number
committed); the actor drops what is acknowledged. So nothing committed is lost and nothing is committed twice.

A dead actor process (killed, out of memory, its node lost) is started again by Ray (``max_restarts``; calls are
retried, ``max_task_retries``): the new one loads its pipeline and opens the camera again, by itself. Meanwhile the
camera's status is ``reconnecting`` with an error saying Ray is restarting it, and ``restarts`` counts them; the
other cameras are other processes and go on. What such a death loses: the people in view at that moment (their open
tracks; someone still there when the camera is back becomes a new person), the frames of the outage, and the
events the actor had closed but the server had not taken yet (a poll's round trip: milliseconds, unless the
store cannot commit). A camera stopped through the API or at shutdown loses nothing: its open people are closed,
committed, then the actor is ended. The actors belong to the server: when it ends, they end.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from maskwatch.detect.config import DetectorConfig
from maskwatch.detect.pipeline import Pipeline
from maskwatch.errors import MaskwatchError
from maskwatch.monitor.camera import Camera
from maskwatch.monitor.config import CameraConfig, MonitorSettings
from maskwatch.monitor.people import PersonEvent
from maskwatch.scale.cluster import require_ray

logger = logging.getLogger(__name__)

POLL_WAIT = 1.0  # seconds a poll waits in the actor for the next event (it also brings the camera's status)
SILENT_AFTER = 1.5  # a poll unanswered this long after its wait: the actor is starting or restarting
MAX_PENDING = 2000  # events an actor keeps for a server that does not take them (the oldest dropped, counted)
BATCH = 100  # most events per poll
COUNTERS = ("dropped", "skipped", "frames", "read", "people", "reconnects")  # summed over an actor's lives


class Outbox:
    """The actor's closed person events, numbered from 1, until the server acknowledges them."""

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self._cond = threading.Condition()
        self._events: list[tuple[int, PersonEvent]] = []
        self._last = 0
        self.limit = limit
        self.overflow = 0  # events dropped because the server took none for too long

    def add(self, events: list[PersonEvent]) -> None:
        with self._cond:
            for event in events:
                self._last += 1
                self._events.append((self._last, event))
            extra = len(self._events) - self.limit
            if extra > 0:
                del self._events[:extra]
                self.overflow += extra
            self._cond.notify_all()

    def take(self, after: int, wait: float, limit: int = BATCH) -> list[tuple[int, PersonEvent]]:
        """Drop the events up to number ``after`` (acknowledged), then return the next ones, waiting up to ``wait``
        seconds for one."""
        with self._cond:
            while self._events and self._events[0][0] <= after:
                self._events.pop(0)
            self._cond.wait_for(lambda: bool(self._events), wait)
            return self._events[:limit]

    def pending(self) -> int:
        with self._cond:
            return len(self._events)


class CameraActor:
    """The actor's body (made a Ray actor by ``RayCameras``): one ``Camera`` and its ``Outbox``. ``incarnation``
    is new in every process Ray starts for it, so the server knows a restart and numbers start again."""

    def __init__(
        self,
        config: CameraConfig,
        settings: MonitorSettings,
        model: str | None,
        detector: DetectorConfig,
        threads: int,
    ) -> None:
        os.environ.setdefault("MASKWATCH_THREADS", str(threads))  # onnxruntime threads (the node may set its own)
        from maskwatch.detect.pipeline import load_pipeline

        self.incarnation = uuid.uuid4().hex
        self.outbox = Outbox()
        self.camera = Camera(config, load_pipeline(model, config=detector), self.outbox.add, settings)
        import ray

        self.node = ray.util.get_node_ip_address()
        self.camera.start()

    def poll(self, incarnation: str | None, after: int, wait: float) -> tuple[str, dict[str, Any], list]:
        """(incarnation, status, events after ``after``); ``after`` acknowledges, when it is of this incarnation."""
        events = self.outbox.take(after if incarnation == self.incarnation else 0, wait)
        status = self.camera.status()
        status.update(node=self.node, pid=os.getpid(), unsent=self.outbox.pending(), lost=self.outbox.overflow)
        return self.incarnation, status, events

    def preview_jpeg(self) -> bytes | None:
        return self.camera.preview_jpeg()

    def stop(self, timeout: float) -> bool:
        return self.camera.stop(timeout)

    def pid(self) -> int:
        return os.getpid()


@dataclass
class RayCameras:
    """The camera factory of ``--engine ray`` (``Monitor(camera_factory=...)``): each camera an actor of
    ``num_cpus`` CPUs (fractional: several cameras share a core), spread over the cluster's nodes, restarted by
    Ray up to ``max_restarts`` times (-1: for ever, as a local camera reconnects for ever). ``model`` is the
    classifier's .onnx file (None: the shipped one); it must be at that path on every node."""

    model: str | None = None
    detector: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)
    num_cpus: float = 0.5
    max_restarts: int = -1
    threads: int | None = None  # onnxruntime threads per actor; None: num_cpus rounded up

    def __post_init__(self) -> None:
        if not (math.isfinite(self.num_cpus) and self.num_cpus > 0):
            raise MaskwatchError(f"--camera-cpus must be positive (got {self.num_cpus})")
        self._actor_class = require_ray().remote(CameraActor)

    @classmethod
    def for_pipeline(cls, pipeline: Pipeline, detector: DetectorConfig, **options: Any) -> RayCameras:
        """The factory whose actors load the classifier file that ``pipeline`` (the server's) was loaded from."""
        path = getattr(pipeline.classifier, "path", None)
        if path is None:
            raise MaskwatchError(
                "--engine ray runs ONNX classifiers only (each camera's actor loads the .onnx file): export the"
                " checkpoint (`maskwatch export`) and pass the .onnx as --model"
            )
        return cls(model=str(path), detector=detector, **options)

    def actor(self, config: CameraConfig, settings: MonitorSettings) -> Any:
        """A new actor for this camera (what Ray restarts: the same arguments again)."""
        settings = dataclasses.replace(settings, cameras=[], alert_targets=[], db=None)  # what the camera needs
        threads = self.threads or max(1, math.ceil(self.num_cpus))
        options = {
            "num_cpus": self.num_cpus,
            "max_restarts": self.max_restarts,
            "max_task_retries": -1,
            "max_concurrency": 4,  # a poll waits in the actor while status, preview and stop are answered
            "scheduling_strategy": "SPREAD",
        }
        return self._actor_class.options(**options).remote(config, settings, self.model, self.detector, threads)

    def __call__(
        self, config: CameraConfig, on_people: Callable[[list[PersonEvent]], None], settings: MonitorSettings
    ) -> RayCamera:
        return RayCamera(config, on_people, settings, self)


class RayCamera:
    """A camera whose ``Camera`` runs in a Ray actor: ``start``, ``status``, ``preview_jpeg``, ``stop`` as a local
    one. Its thread pulls the actor's person events, hands them to ``on_people`` one by one (the manager commits
    them) and acknowledges each only after that."""

    def __init__(
        self,
        config: CameraConfig,
        on_people: Callable[[list[PersonEvent]], None],
        settings: MonitorSettings,
        factory: RayCameras,
    ) -> None:
        self.config = config
        self.on_people = on_people
        self.settings = settings
        self.factory = factory
        self.actor: Any = None
        self.committed = 0  # events committed through this camera
        self.restarts = 0  # actor processes Ray started again
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_ref: Any = None
        self._thread: threading.Thread | None = None
        self._incarnation: str | None = None
        self._after = 0  # the last event number committed (of this incarnation)
        self._status: dict[str, Any] | None = None  # the actor's latest answer
        self._earlier = dict.fromkeys(COUNTERS, 0)  # counters of the actor's earlier lives
        self._override: tuple[str, str | None] | None = ("connecting", None) if config.enabled else None

    # ----------------------------------------------------------------------------------------------- control
    def start(self) -> None:
        if self._thread is not None or not self.config.enabled:
            return
        self.actor = self.factory.actor(self.config, self.settings)
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.config.name}-ray", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self.actor is not None and self._stop_ref is None:
                self._stop_ref = self.actor.stop.remote(5.0)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the camera in its actor, commit the people it closed, end the actor; True when done in time."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout + 2.0)
        with self._lock:
            if self._override is None or self._override[0] != "failed":
                self._override = ("stopped", None)
        return not self.running

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pid(self, timeout: float = 30.0) -> int:
        """The actor's process id (tests kill it)."""
        return int(require_ray().get(self.actor.pid.remote(), timeout=timeout))

    # ---------------------------------------------------------------------------------------------- the pull
    def _run(self) -> None:
        ray = require_ray()
        from ray.exceptions import RayActorError

        ref, asked = None, 0.0
        try:
            while not self._stop.is_set():
                if ref is None:
                    ref, asked = self.actor.poll.remote(self._incarnation, self._after, POLL_WAIT), time.monotonic()
                ready, _ = ray.wait([ref], timeout=0.25)
                if not ready:
                    if time.monotonic() - asked > POLL_WAIT + SILENT_AFTER:
                        self._silent(time.monotonic() - asked)
                    continue
                done, ref = ref, None
                try:
                    incarnation, status, events = ray.get(done)
                except RayActorError as exc:  # dead for good (restarts are retried by Ray and answer later)
                    self._set_override("failed", f"the camera's Ray actor died: {_one_line(exc)}")
                    return
                self._answered(incarnation, status)
                if not self._commit(events):
                    self._stop.wait(0.5)  # the store failed: the events stay in the actor, asked for again
        except Exception as exc:  # this camera fails alone
            logger.exception("camera %s: the Ray pull stopped", self.config.name)
            self._set_override("failed", _one_line(exc))
        finally:
            self._finish()

    def _answered(self, incarnation: str, status: dict[str, Any]) -> None:
        with self._lock:
            if incarnation != self._incarnation:
                if self._incarnation is not None:  # Ray started the actor again: its counters start again
                    self.restarts += 1
                    logger.warning("camera %s: its Ray actor was restarted (%d)", self.config.name, self.restarts)
                    for key in COUNTERS:
                        self._earlier[key] += int((self._status or {}).get(key) or 0)
                self._incarnation, self._after = incarnation, 0
            self._status = status
            if self._override is not None and self._override[0] != "failed":
                self._override = None

    def _silent(self, seconds: float) -> None:
        if self._status is None:
            self._set_override("connecting", None)  # Ray is placing the actor, or it loads its pipeline
        else:
            self._set_override(
                "reconnecting", f"the camera's Ray actor has not answered for {seconds:.0f} s (Ray is restarting it)"
            )

    def _commit(self, events: list[tuple[int, PersonEvent]]) -> bool:
        for number, event in events:
            if number <= self._after:
                continue
            try:
                self.on_people([event])  # committed (store, then alerts) before it is acknowledged
            except Exception:
                logger.exception("camera %s: person event not committed (asked for again)", self.config.name)
                return False
            self._after = number
            self.committed += 1
        return True

    def _finish(self) -> None:
        """Stopping: wait for the camera to stop in its actor, commit what it closed, end the actor."""
        ray = require_ray()
        from ray.exceptions import GetTimeoutError, RayError

        actor, self.actor = self.actor, None
        if actor is None:
            return
        try:
            if self._stop_ref is not None:
                ray.get(self._stop_ref, timeout=10.0)
            while True:
                incarnation, _, events = ray.get(actor.poll.remote(self._incarnation, self._after, 0.0), timeout=10.0)
                if incarnation != self._incarnation:
                    break  # a new process: the events of the old one were all taken or lost with it
                if not events or not self._commit(events):
                    break
        except (RayError, GetTimeoutError) as exc:
            logger.warning("camera %s: stopping its Ray actor: %s", self.config.name, _one_line(exc))
        finally:
            ray.kill(actor, no_restart=True)

    # ------------------------------------------------------------------------------------------------- views
    def _set_override(self, state: str, error: str | None) -> None:
        with self._lock:
            if self._override is None or self._override[0] != "failed":
                self._override = (state, error)

    def status(self) -> dict[str, Any]:
        with self._lock:
            answer, override, earlier = self._status, self._override, dict(self._earlier)
            restarts = self.restarts
        out: dict[str, Any] = dict(answer) if answer else _blank(self.config)
        for key in COUNTERS:
            out[key] = int(out.get(key) or 0) + earlier[key]
        if override is not None:
            out["status"], out["error"], out["fps"] = override[0], override[1], 0.0
        out.update(engine="ray", restarts=restarts, committed=self.committed)
        return out

    def preview_jpeg(self) -> bytes | None:
        with self._lock:
            actor, answering = self.actor, self._override is None
        if actor is None or not answering:
            return None
        ray = require_ray()
        from ray.exceptions import GetTimeoutError, RayError

        try:
            return ray.get(actor.preview_jpeg.remote(), timeout=5.0)
        except (RayError, GetTimeoutError):
            return None


def _blank(config: CameraConfig) -> dict[str, Any]:
    """A camera's status before its actor first answered (the fields of ``Camera.status``)."""
    blank: dict[str, Any] = {"name": config.name, "status": "stopped", "fps": 0.0, "last_frame": None, "error": None}
    return blank | dict.fromkeys(COUNTERS, 0) | {"url": config.shown_url, "enabled": config.enabled}


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"[:300]
