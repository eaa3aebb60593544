"""``CameraConfig`` (one camera: where, how fast, how faces are found, what alerts) and ``MonitorSettings`` (the
monitor's own options), typed and checked in one place; each error is one line naming the camera and the field.

Cameras come from ``--camera NAME=URL`` (repeatable), from ``--cameras FILE`` (TOML: ``[[camera]]`` tables, an
optional ``[defaults]`` table) and from the API; ``to_dict``/``from_dict`` is the form the store keeps.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from maskwatch.detect.config import DetectorConfig
from maskwatch.detect.sources import VIDEO_EXTENSIONS, Input, _hide_password
from maskwatch.errors import MaskwatchError
from maskwatch.labels import CANONICAL_LABELS, MASK_WORN_INCORRECTLY, WITHOUT_MASK

DEFAULT_ALERT_LABELS = (WITHOUT_MASK, MASK_WORN_INCORRECTLY)
SNAPSHOT_MODES = ("blurred", "full", "none")
CAMERA_SCHEMES = ("rtsp", "rtsps", "http", "https")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # it appears in URLs: /api/v1/cameras/{name}
MAX_FPS = 60.0
DETECTOR_FIELDS = {"video_size", "threshold", "size", "tiles", "margin", "nms_iou", "box_fit"}


def hide_password(url: str) -> str:
    """The URL with its password replaced by ``***`` (what the API and the logs show)."""
    return _hide_password(url)


def camera_input(url: str) -> Input:
    """What ``url`` is, as ``detect.sources`` reads it: a stream (rtsp:// over TCP, http(s):// MJPEG or anything
    PyAV opens), a video file, or a webcam index. Raises ``ValueError`` with the reason."""
    text = url.strip()
    if not text:
        raise ValueError("empty")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if scheme:
        name = scheme.group(1).lower()
        if name not in CAMERA_SCHEMES:
            raise ValueError(f"unsupported scheme {name}:// (use {', '.join(s + '://' for s in CAMERA_SCHEMES)})")
        if not text[len(scheme.group(0)) :].split("/", 1)[0]:
            raise ValueError(f"no host in {hide_password(text)!r}")
        return Input("stream", text)
    if re.fullmatch(r"[0-9]{1,3}", text):
        return Input("webcam", str(int(text)))
    path = Path(text).expanduser()
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise ValueError(f"not a camera URL, webcam index or video file: {text[:80]!r}")
    return Input("video", str(path))


def _number(value: Any, what: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MaskwatchError(f"{what} must be a number (got {value!r})")
    if integer and int(value) != value:
        raise MaskwatchError(f"{what} must be a whole number (got {value!r})")
    return value


@dataclass(frozen=True)
class CameraConfig:
    """One camera.

    fps: most frames per second analysed (the rest are skipped, counted). detector: detector settings (its
    ``video_size``: detector input for this camera, None: half the frame's long side as ``detect`` does, 320 for
    640x480; ``threshold``). min_face:
    faces whose shorter side is under this many pixels are ignored. alert_labels / alert_min_frames /
    alert_min_votes (vote share 0..1) / alert_cooldown (seconds): the alert rule of this camera (read by
    ``monitor.alerts``). enabled: started at all. loop: a video file starts again at its end (else it stops).
    timeout: seconds to connect and between packets (a frozen camera counts as lost after it).
    classify_every: a tracked face is classified again every this many analysed frames (as ``detect``).
    """

    name: str
    url: str
    fps: float = 5.0
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    min_face: int = 16
    alert_labels: tuple[str, ...] = DEFAULT_ALERT_LABELS
    alert_min_frames: int = 3
    alert_min_votes: float = 0.5
    alert_cooldown: float = 60.0
    enabled: bool = True
    loop: bool = False
    timeout: float = 10.0
    classify_every: int = 3

    def __post_init__(self) -> None:
        name = self.name if isinstance(self.name, str) else ""
        if not NAME.match(name):
            raise MaskwatchError(
                f"camera name {self.name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
            )
        where = f"camera {name!r}"
        if not isinstance(self.url, str):
            raise MaskwatchError(f"{where}: url must be text (got {self.url!r})")
        try:
            camera_input(self.url)
        except ValueError as exc:
            raise MaskwatchError(f"{where}: url: {exc}") from None
        if not 0 < _number(self.fps, f"{where}: fps") <= MAX_FPS:
            raise MaskwatchError(f"{where}: fps must be above 0 and at most {MAX_FPS:g} (got {self.fps})")
        if not isinstance(self.detector, DetectorConfig):
            raise MaskwatchError(f"{where}: detector must be a DetectorConfig")
        if not 0 <= _number(self.min_face, f"{where}: min_face", integer=True) <= 4096:
            raise MaskwatchError(f"{where}: min_face must be 0..4096 pixels (got {self.min_face})")
        if isinstance(self.alert_labels, str):
            labels: tuple = (self.alert_labels,)
        elif isinstance(self.alert_labels, list | tuple) and all(isinstance(v, str) for v in self.alert_labels):
            labels = tuple(self.alert_labels)
        else:
            raise MaskwatchError(f"{where}: alert_labels must be a list of labels (got {self.alert_labels!r})")
        unknown = [label for label in labels if label not in CANONICAL_LABELS]
        if unknown:
            raise MaskwatchError(f"{where}: alert_labels: unknown {unknown} (known: {', '.join(CANONICAL_LABELS)})")
        object.__setattr__(self, "alert_labels", labels)
        if not 1 <= _number(self.alert_min_frames, f"{where}: alert_min_frames", integer=True) <= 100_000:
            raise MaskwatchError(f"{where}: alert_min_frames must be at least 1 (got {self.alert_min_frames})")
        if not 0 <= _number(self.alert_min_votes, f"{where}: alert_min_votes") <= 1:
            raise MaskwatchError(f"{where}: alert_min_votes must be a share 0..1 (got {self.alert_min_votes})")
        if not 0 <= _number(self.alert_cooldown, f"{where}: alert_cooldown") <= 86400 * 7:
            raise MaskwatchError(f"{where}: alert_cooldown must be 0..604800 seconds (got {self.alert_cooldown})")
        if not 0 < _number(self.timeout, f"{where}: timeout") <= 300:
            raise MaskwatchError(f"{where}: timeout must be above 0 and at most 300 seconds (got {self.timeout})")
        if not 1 <= _number(self.classify_every, f"{where}: classify_every", integer=True) <= 1000:
            raise MaskwatchError(f"{where}: classify_every must be 1..1000 (got {self.classify_every})")
        for flag in ("enabled", "loop"):
            if not isinstance(getattr(self, flag), bool):
                raise MaskwatchError(f"{where}: {flag} must be true or false (got {getattr(self, flag)!r})")
        object.__setattr__(self, "min_face", int(self.min_face))
        object.__setattr__(self, "alert_min_frames", int(self.alert_min_frames))
        object.__setattr__(self, "classify_every", int(self.classify_every))

    @property
    def input(self) -> Input:
        return camera_input(self.url)

    @property
    def shown_url(self) -> str:
        return hide_password(self.url)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML values (the store keeps this; ``from_dict`` reads it back)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "detector"}
        out["alert_labels"] = list(self.alert_labels)
        det = self.detector.describe()
        out["detector"] = {k: det[k] for k in sorted(DETECTOR_FIELDS)}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, defaults: dict[str, Any] | None = None) -> CameraConfig:
        """From a TOML table, a JSON body or the store: unknown keys are an error naming them. ``defaults``
        (a ``[defaults]`` table) fills what ``data`` leaves out."""
        if not isinstance(data, dict):
            raise MaskwatchError(f"a camera must be a table of fields (got {type(data).__name__})")
        base = dict(defaults or {})
        name = data.get("name", "?")
        det_tables = [base.pop("detector", {}), data.get("detector", {})]
        if not all(isinstance(t, dict) for t in det_tables):
            raise MaskwatchError(f"camera {name!r}: detector must be a table (video_size, threshold, ...)")
        det = {**det_tables[0], **det_tables[1]}
        merged: dict[str, Any] = {**base, **{k: v for k, v in data.items() if k != "detector"}}
        for key in ("video_size", "threshold"):  # the common two may also sit at the top level
            if key in merged:
                det[key] = merged.pop(key)
        known = {f.name for f in fields(cls)} - {"detector"}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise MaskwatchError(f"camera {name!r}: unknown field(s) {', '.join(unknown)}")
        bad = sorted(set(det) - DETECTOR_FIELDS)
        if bad:
            raise MaskwatchError(f"camera {name!r}: detector: unknown field(s) {', '.join(bad)}")
        for key in ("name", "url"):
            if key not in merged:
                raise MaskwatchError(f"camera {name!r}: {key} is missing")
        try:
            detector = DetectorConfig(**det)
        except MaskwatchError as exc:
            raise MaskwatchError(f"camera {name!r}: detector: {exc}") from None
        except TypeError as exc:
            raise MaskwatchError(f"camera {name!r}: detector: {exc}") from None
        return cls(detector=detector, **merged)

    def changed(self, updates: dict[str, Any]) -> CameraConfig:
        """A copy with ``updates`` (the fields of a PUT body) applied and checked; the name stays."""
        if "name" in updates and updates["name"] != self.name:
            raise MaskwatchError(f"camera {self.name!r}: the name cannot change (remove it and add another)")
        data = self.to_dict()
        if "detector" in updates:
            data["detector"] = {**data["detector"], **dict(updates["detector"])}
        data.update({k: v for k, v in updates.items() if k != "detector"})
        return CameraConfig.from_dict(data)


def parse_camera_option(text: str) -> CameraConfig:
    """``--camera NAME=URL``."""
    name, sep, url = text.partition("=")
    if not sep or not name.strip() or not url.strip():
        raise MaskwatchError(f"--camera must be NAME=URL (e.g. door=rtsp://10.0.0.5/stream), not {text[:80]!r}")
    try:
        return CameraConfig(name=name.strip(), url=url.strip())
    except MaskwatchError as exc:
        raise MaskwatchError(f"--camera {name.strip()}={hide_password(url.strip())[:120]}: {exc}") from None


def load_cameras_file(path: str | Path) -> list[CameraConfig]:
    """``--cameras FILE``: TOML with ``[[camera]]`` tables (name, url, fps, ...) and an optional ``[defaults]``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MaskwatchError(f"--cameras {path}: does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MaskwatchError(f"--cameras {path}: cannot read ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise MaskwatchError(f"--cameras {path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"camera", "defaults"})
    if unknown:
        raise MaskwatchError(
            f"--cameras {path}: unknown table(s) {', '.join(unknown)} (expected [[camera]], [defaults])"
        )
    tables = data.get("camera", [])
    defaults = data.get("defaults", {})
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables) or not isinstance(defaults, dict):
        raise MaskwatchError(f"--cameras {path}: cameras must be [[camera]] tables and defaults a [defaults] table")
    if not tables:
        raise MaskwatchError(f"--cameras {path}: no [[camera]] table")
    if "name" in defaults or "url" in defaults:
        raise MaskwatchError(f"--cameras {path}: [defaults] cannot set name or url")
    out = []
    for table in tables:
        try:
            out.append(CameraConfig.from_dict(table, defaults=defaults))
        except MaskwatchError as exc:
            raise MaskwatchError(f"--cameras {path}: {exc}") from None
    return unique_cameras(out)


def unique_cameras(cameras: list[CameraConfig]) -> list[CameraConfig]:
    seen: set[str] = set()
    for cam in cameras:
        if cam.name in seen:
            raise MaskwatchError(f"camera {cam.name!r} is named twice")
        seen.add(cam.name)
    return cameras


def check_camera_files(cameras: list[CameraConfig]) -> None:
    """A video-file camera whose file is missing is an error at start (later, a missing file fails the camera)."""
    for cam in cameras:
        inp = cam.input
        if inp.kind == "video" and not Path(inp.location).is_file():
            raise MaskwatchError(f"camera {cam.name!r}: url: file does not exist: {inp.location}")


@dataclass
class MonitorSettings:
    """The monitor's options. db: its SQLite file (None: ``monitor.sqlite`` beside the server's ``--db``);
    snapshots: "blurred" (faces blurred, the default), "full" or "none"; retention_days: older person events and
    their snapshots are deleted (0: kept for ever); max_person_seconds: a person in view longer is written as an
    event at that point and a new one starts; preview_seconds: how often a camera's preview frame is renewed;
    alert_targets: where alerts go (``monitor.alerts.Target``; none: alerts are only logged and listed)."""

    cameras: list[CameraConfig] = field(default_factory=list)
    db: Path | None = None
    alert_targets: list[Any] = field(default_factory=list)  # monitor.alerts.Target: --webhook, --mqtt
    public_url: str | None = None  # the server's address as receivers reach it (snapshot URLs in alerts)
    snapshots: str = "blurred"
    retention_days: float = 30.0
    max_person_seconds: float = 300.0
    preview_seconds: float = 1.0
    sweep_seconds: float = 3600.0
    backoff_start: float = 0.5
    backoff_max: float = 30.0

    def validate(self) -> None:
        if self.snapshots not in SNAPSHOT_MODES:
            raise MaskwatchError(f"--snapshots must be one of {', '.join(SNAPSHOT_MODES)} (got {self.snapshots!r})")
        if not (math.isfinite(self.retention_days) and self.retention_days >= 0):
            raise MaskwatchError(f"--retention-days must be 0 (keep) or more (got {self.retention_days})")
        if not (math.isfinite(self.max_person_seconds) and self.max_person_seconds >= 1):
            raise MaskwatchError(f"--max-person-seconds must be at least 1 (got {self.max_person_seconds})")
        if not self.preview_seconds > 0 or not self.sweep_seconds > 0:
            raise MaskwatchError("preview_seconds and sweep_seconds must be positive")
        if not 0 < self.backoff_start <= self.backoff_max:
            raise MaskwatchError("backoff_start must be positive and at most backoff_max")
        unique_cameras(self.cameras)

    def with_cameras(self, cameras: list[CameraConfig]) -> MonitorSettings:
        return replace(self, cameras=list(cameras))
